-- expect: ok
CALL shop.p_inv(5)
