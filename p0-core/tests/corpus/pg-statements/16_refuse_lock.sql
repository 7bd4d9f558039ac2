-- expect: refuse
LOCK TABLE film
