-- expect: ok
SELECT id FROM imp.v_func
