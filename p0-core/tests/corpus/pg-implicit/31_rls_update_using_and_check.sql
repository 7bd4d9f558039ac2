-- expect: ok
UPDATE imp.wdocs SET body = 'x' WHERE id = 1
