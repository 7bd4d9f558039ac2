-- expect: ok
INSERT INTO imp.tracked_def VALUES (1, 'a')
