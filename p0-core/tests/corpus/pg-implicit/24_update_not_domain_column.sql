-- expect: ok
UPDATE imp.priced SET id = 3
