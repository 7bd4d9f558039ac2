-- Applied on top of the pagila schema and data (hardened: nothing granted to PUBLIC):
-- a schema with mixed-case and non-ASCII names, a procedure, a table behind a sequence,
-- and public objects named like pg_catalog ones (pg_catalog is searched first).
CREATE SCHEMA app;
CREATE TABLE app."Mixed" (id int PRIMARY KEY, v text);
CREATE TABLE app.mixed (id int PRIMARY KEY, v text);
CREATE TABLE app."Ä" (id int);
CREATE TABLE app."ä" (id int);
INSERT INTO app."Ä" VALUES (1);
CREATE TABLE app.log (id serial PRIMARY KEY, msg text);
CREATE PROCEDURE app.add_log(m text) LANGUAGE sql AS $$ INSERT INTO app.log (msg) VALUES (m) $$;
CREATE PROCEDURE app.touch(n int) SECURITY DEFINER LANGUAGE sql AS $$ SELECT n $$;
CREATE FUNCTION public.now() RETURNS timestamptz LANGUAGE sql AS $$ SELECT '2000-01-01'::timestamptz $$;
CREATE TABLE public.pg_class (x int);
REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE pagila FROM PUBLIC;
REVOKE EXECUTE ON ALL ROUTINES IN SCHEMA public, app FROM PUBLIC;
