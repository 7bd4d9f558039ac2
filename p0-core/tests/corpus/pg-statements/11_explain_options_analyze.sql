-- expect: ok
EXPLAIN (ANALYZE, COSTS OFF) INSERT INTO app.log (msg) VALUES ('x')
