-- expect: ok
UPDATE items i JOIN notes n ON n.id = i.id SET price = price + 1 WHERE note = 'x'
