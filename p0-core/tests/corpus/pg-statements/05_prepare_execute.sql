-- expect: ok
PREPARE q(int) AS SELECT title FROM film WHERE film_id = $1; EXECUTE q(1)
