-- expect: ok
EXPLAIN ANALYZE INSERT INTO app.log (msg) VALUES ('x')
