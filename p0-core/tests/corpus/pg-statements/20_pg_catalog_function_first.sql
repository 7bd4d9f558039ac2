-- expect: ok
SELECT now()
