-- expect: ok
SELECT id FROM v_inv_fn_inv
