-- expect: ok
SELECT reverse(name) FROM items WHERE id = 1
