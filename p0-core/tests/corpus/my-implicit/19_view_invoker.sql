-- expect: ok
SELECT name FROM v_inv WHERE id = 1
