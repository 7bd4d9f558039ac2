-- expect: ok
INSERT INTO tracked (id, v) VALUES (10, 1)
