-- expect: ok
INSERT INTO imp.adocs (id, owner) VALUES (2, 'b')
