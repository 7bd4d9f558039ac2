-- expect: ok
INSERT INTO imp.priced VALUES (2, 7)
