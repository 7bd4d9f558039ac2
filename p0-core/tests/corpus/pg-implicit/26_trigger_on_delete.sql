-- expect: ok
DELETE FROM imp.tracked_del
