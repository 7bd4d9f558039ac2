-- expect: ok
EXPLAIN INSERT INTO app.log (msg) VALUES ('x')
