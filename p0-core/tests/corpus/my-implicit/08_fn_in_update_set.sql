-- expect: ok
UPDATE items SET name = f_inv(id) WHERE id = 1
