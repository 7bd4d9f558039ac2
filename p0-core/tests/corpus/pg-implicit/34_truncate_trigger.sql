-- expect: ok
TRUNCATE imp.trunc
