-- expect: ok
SELECT * FROM imp.v_plpgsql_fn
