-- expect: ok
CALL p_def_calls_inv(1)
