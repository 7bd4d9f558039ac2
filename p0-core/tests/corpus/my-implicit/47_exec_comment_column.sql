-- expect: ok
SELECT id /*!, name */ FROM items
