-- expect: ok
SELECT * FROM imp.v_over_inv
