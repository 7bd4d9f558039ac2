-- expect: ok
INSERT INTO orders (id, item) VALUES (5, 1)
