-- expect: ok
SELECT f_def_calls_inv(1)
