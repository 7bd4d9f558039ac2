-- expect: ok
CALL p_inv_nested(1)
