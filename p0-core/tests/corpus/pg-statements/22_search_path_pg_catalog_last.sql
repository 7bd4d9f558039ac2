-- expect: ok
SET search_path = public, pg_catalog; SELECT now()
