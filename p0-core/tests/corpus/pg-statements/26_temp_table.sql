-- expect: ok
CREATE TEMP TABLE scratch (a int DEFAULT 0, b text)
