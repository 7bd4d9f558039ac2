-- expect: ok
SELECT f_inv_calls_def(1)
