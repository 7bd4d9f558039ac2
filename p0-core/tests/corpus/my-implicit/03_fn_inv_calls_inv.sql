-- expect: ok
SELECT f_inv_calls_inv(1)
