-- expect: ok
TABLE film ORDER BY film_id LIMIT 1
