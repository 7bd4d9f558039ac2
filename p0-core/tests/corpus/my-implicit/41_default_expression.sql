-- expect: ok
INSERT INTO stamped (id, v) VALUES (1, 4)
