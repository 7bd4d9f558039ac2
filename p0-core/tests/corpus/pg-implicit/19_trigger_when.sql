-- expect: ok
INSERT INTO imp.tracked_when VALUES (1, 'a')
