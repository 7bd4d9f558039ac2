-- expect: ok
INSERT INTO imp.v_tickets (title) VALUES ('x')
