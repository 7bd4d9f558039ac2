-- expect: ok
DELETE FROM tracked WHERE id = 2
