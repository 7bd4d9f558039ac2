-- expect: ok
SELECT f_block(1)
