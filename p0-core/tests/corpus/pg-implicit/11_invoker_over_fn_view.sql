-- expect: ok
SELECT * FROM imp.v_inv_over_fn
