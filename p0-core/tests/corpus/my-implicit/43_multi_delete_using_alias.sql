-- expect: ok
DELETE FROM i USING items AS i JOIN notes AS n ON n.id = i.id WHERE n.note = 'y'
