-- expect: ok
CALL app.touch(1)
