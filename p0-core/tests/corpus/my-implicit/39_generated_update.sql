-- expect: ok
UPDATE olines SET qty = 3 WHERE id = 1
