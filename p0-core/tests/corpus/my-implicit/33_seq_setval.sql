-- expect: ok
SELECT SETVAL(seq, 500)
