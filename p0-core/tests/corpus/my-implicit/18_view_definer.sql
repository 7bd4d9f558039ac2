-- expect: ok
SELECT name FROM v_def
