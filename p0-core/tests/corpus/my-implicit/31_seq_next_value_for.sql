-- expect: ok
SELECT NEXT VALUE FOR seq
