-- expect: ok
INSERT INTO imp.wallet (id, m) VALUES (3, '(7)')
