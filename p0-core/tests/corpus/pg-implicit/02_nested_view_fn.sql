-- expect: ok
SELECT * FROM imp.v_nested
