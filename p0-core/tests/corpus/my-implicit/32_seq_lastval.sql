-- expect: ok
SELECT LASTVAL(seq)
