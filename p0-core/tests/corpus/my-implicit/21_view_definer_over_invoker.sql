-- expect: ok
SELECT * FROM v_def_over_inv
