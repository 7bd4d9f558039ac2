-- expect: ok
SELECT other.f_inv(1)
