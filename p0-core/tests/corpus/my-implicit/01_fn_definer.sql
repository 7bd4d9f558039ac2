-- expect: ok
SELECT f_def(1)
