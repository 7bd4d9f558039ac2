-- expect: ok
UPDATE tracked SET v = v + 1 WHERE id = 1
