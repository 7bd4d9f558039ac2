-- expect: ok
DELETE FROM v_def_check WHERE qty = 0
