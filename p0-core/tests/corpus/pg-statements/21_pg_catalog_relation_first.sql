-- expect: ok
SELECT relname FROM pg_class LIMIT 1
