-- expect: ok
INSERT INTO imp.wdocs (id, owner, body) VALUES (3, 'c', 'three')
