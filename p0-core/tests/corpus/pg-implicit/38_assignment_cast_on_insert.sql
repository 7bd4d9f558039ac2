-- expect: ok
INSERT INTO imp.wallet (id, m) VALUES (2, 5)
