-- expect: ok
EXPLAIN (ANALYZE false, COSTS OFF) INSERT INTO app.log (msg) VALUES ('x')
