-- expect: ok
INSERT INTO imp.v_tickets (id, title) VALUES (99, 'y')
