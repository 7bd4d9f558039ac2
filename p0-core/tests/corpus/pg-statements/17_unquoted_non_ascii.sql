-- expect: ok
SELECT * FROM app.Ä
