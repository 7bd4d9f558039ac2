-- expect: ok
SELECT f_inv(2)
