-- expect: ok
INSERT INTO olines (id, qty) VALUES (7, 1)
