-- expect: ok
TABLE film
