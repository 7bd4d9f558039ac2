-- expect: ok
INSERT INTO imp.v_instead (id, v) VALUES (5, 'e')
