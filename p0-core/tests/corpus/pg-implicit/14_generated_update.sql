-- expect: ok
UPDATE imp.gen SET a = 4
