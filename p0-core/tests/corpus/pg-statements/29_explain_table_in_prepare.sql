-- expect: ok
PREPARE t AS TABLE app.mixed; EXPLAIN EXECUTE t
