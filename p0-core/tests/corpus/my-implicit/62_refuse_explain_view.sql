-- expect: refuse
EXPLAIN SELECT * FROM v_def
