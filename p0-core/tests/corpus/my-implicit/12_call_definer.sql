-- expect: ok
CALL p_def(5)
