-- expect: refuse
CREATE TEMP TABLE scratch (a int REFERENCES film (film_id))
