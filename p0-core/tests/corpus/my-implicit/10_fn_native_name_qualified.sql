-- expect: ok
SELECT shop.reverse(name) FROM items WHERE id = 1
