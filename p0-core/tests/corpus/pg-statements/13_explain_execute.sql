-- expect: ok
PREPARE q2(int) AS SELECT title FROM film WHERE film_id = $1; EXPLAIN EXECUTE q2(1)
