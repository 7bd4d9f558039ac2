-- expect: ok
SELECT n FROM v_inv_fn_def
