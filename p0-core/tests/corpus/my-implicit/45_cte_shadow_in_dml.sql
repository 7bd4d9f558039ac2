-- expect: ok
UPDATE items SET qty = 0 WHERE id IN (WITH items AS (SELECT id FROM notes) SELECT id FROM items)
