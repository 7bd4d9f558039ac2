-- expect: ok
WITH c AS (TABLE category) SELECT count(*) FROM c
