-- expect: ok
SELECT * FROM imp.v_func
