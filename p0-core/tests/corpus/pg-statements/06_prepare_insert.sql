-- expect: ok
PREPARE ins(text) AS INSERT INTO app.log (msg) VALUES ($1); EXECUTE ins('x')
