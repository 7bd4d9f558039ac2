-- expect: ok
INSERT INTO imp.tracked VALUES (1, 'a')
