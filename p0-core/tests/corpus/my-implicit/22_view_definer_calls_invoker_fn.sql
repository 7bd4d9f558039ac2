-- expect: ok
SELECT * FROM v_def_fn_inv
