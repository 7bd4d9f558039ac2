-- expect: ok
EXPLAIN SELECT title FROM film
