-- expect: ok
SELECT * FROM v_inv_over_def
