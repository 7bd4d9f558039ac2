-- expect: ok
UPDATE v_inv SET price = price + 1 WHERE id = 2
