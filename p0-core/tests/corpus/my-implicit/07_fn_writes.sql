-- expect: ok
SELECT f_logs(id) FROM items WHERE id = 1
