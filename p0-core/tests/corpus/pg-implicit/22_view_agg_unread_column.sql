-- expect: ok
SELECT fl.title FROM film_list fl LIMIT 2
