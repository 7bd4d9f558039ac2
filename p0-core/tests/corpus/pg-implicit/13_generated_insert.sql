-- expect: ok
INSERT INTO imp.gen (a) VALUES (3)
