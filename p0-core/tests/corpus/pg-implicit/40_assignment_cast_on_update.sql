-- expect: ok
UPDATE imp.wallet SET m = 9 WHERE id = 1
