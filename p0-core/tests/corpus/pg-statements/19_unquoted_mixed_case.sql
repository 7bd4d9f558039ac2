-- expect: ok
SELECT * FROM APP.MIXED
