-- expect: ok
INSERT INTO v_inv (id, name) VALUES (9, 'z')
