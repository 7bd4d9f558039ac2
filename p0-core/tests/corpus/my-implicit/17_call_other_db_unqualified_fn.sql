-- expect: ok
CALL other.p_uses_f(1)
