-- expect: ok
WITH items AS (SELECT id, note FROM notes) SELECT note FROM items
