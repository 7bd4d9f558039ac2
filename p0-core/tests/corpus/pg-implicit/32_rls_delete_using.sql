-- expect: ok
DELETE FROM imp.wdocs WHERE id = 2
