-- expect: refuse
CREATE TEMP TABLE scratch (LIKE film)
