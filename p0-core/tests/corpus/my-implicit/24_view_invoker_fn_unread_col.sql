-- expect: ok
SELECT name FROM v_inv_fn_pure
