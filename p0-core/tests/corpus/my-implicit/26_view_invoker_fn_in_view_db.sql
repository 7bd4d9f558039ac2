-- expect: ok
SELECT n FROM other.v_fn WHERE item = 1
