-- expect: ok
INSERT INTO orders (item) VALUES (1)
