-- expect: ok
UPDATE imp.tracked SET v = 'b'
