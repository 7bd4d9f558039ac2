-- expect: ok
CALL p_inv_read(1, @r)
