-- expect: ok
CALL app.add_log('x')
