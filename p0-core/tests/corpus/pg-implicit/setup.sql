-- Applied on top of the pagila schema and data: objects through which PostgreSQL runs code
-- or checks privileges implicitly. Tables live in `base`, functions in `fx`, what queries
-- name in `imp`, so that a schema USAGE granted where the server binds by OID shows up as
-- unnecessary. Nothing is granted to PUBLIC.
ALTER DEFAULT PRIVILEGES REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC;
CREATE SCHEMA base;
CREATE SCHEMA fx;
CREATE SCHEMA imp;
CREATE TABLE base.items (id int PRIMARY KEY, name text, price numeric);
INSERT INTO base.items VALUES (1, 'a', 10), (2, 'b', 20);
CREATE TABLE base.notes (id int, note text);
INSERT INTO base.notes VALUES (1, 'x');

-- 1. functions reached through views
CREATE FUNCTION fx.bump(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN $1 + 1; END$$;
CREATE FUNCTION fx.note_of(int) RETURNS text LANGUAGE sql STABLE SECURITY DEFINER AS $$ SELECT note FROM base.notes WHERE id = $1 $$;
CREATE FUNCTION fx.note_inv(int) RETURNS text LANGUAGE sql STABLE AS $$ SELECT note FROM base.notes WHERE id = $1 $$;
CREATE FUNCTION fx.note_pl(int) RETURNS text LANGUAGE plpgsql STABLE AS $$BEGIN RETURN (SELECT note FROM base.notes WHERE id = $1); END$$;
CREATE FUNCTION fx.double(numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT $1 * 2 $$;
CREATE FUNCTION fx.sum_sf(numeric, numeric) RETURNS numeric LANGUAGE sql IMMUTABLE AS $$ SELECT coalesce($1, 0) + coalesce($2, 0) $$;
CREATE AGGREGATE fx.mysum(numeric) (sfunc = fx.sum_sf, stype = numeric);
CREATE FUNCTION fx.close_to(numeric, numeric) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN abs($1 - $2) < 5; END$$;
CREATE OPERATOR fx.~~~ (leftarg = numeric, rightarg = numeric, function = fx.close_to);
CREATE VIEW imp.v_func AS SELECT id, fx.bump(id) AS b FROM base.items;
CREATE VIEW imp.v_nested AS SELECT id, b FROM imp.v_func;
CREATE VIEW imp.v_agg AS SELECT fx.mysum(price) AS s FROM base.items;
CREATE VIEW imp.v_op AS SELECT id FROM base.items WHERE price OPERATOR(fx.~~~) 12;
CREATE VIEW imp.v_definer AS SELECT id, fx.note_of(id) AS n FROM base.items;
CREATE VIEW imp.v_invoker_fn AS SELECT id, fx.note_inv(id) AS n FROM base.items;
CREATE VIEW imp.v_plpgsql_fn AS SELECT id, fx.note_pl(id) AS n FROM base.items;
CREATE VIEW imp.v_inline AS SELECT id, fx.double(price) AS d FROM base.items;

-- 2. security-invoker views
CREATE VIEW imp.v_inv WITH (security_invoker) AS SELECT id, name FROM base.items;
CREATE VIEW imp.v_over_inv AS SELECT id, name FROM imp.v_inv;
CREATE VIEW imp.v_inv_over_fn WITH (security_invoker) AS SELECT id, b FROM imp.v_func;

-- 3. implicit calls from the catalog
CREATE FUNCTION fx.is_pos(numeric) RETURNS boolean LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN $1 > 0; END$$;
CREATE DOMAIN imp.posnum AS numeric CHECK (fx.is_pos(VALUE));
CREATE TABLE imp.priced (id int, amount imp.posnum);
CREATE FUNCTION fx.twice(int) RETURNS int LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN $1 * 2; END$$;
CREATE TABLE imp.gen (a int, b int GENERATED ALWAYS AS (fx.twice(a)) STORED);
INSERT INTO imp.gen (a) VALUES (1);
CREATE TABLE base.tickets (id serial PRIMARY KEY, title text);
CREATE VIEW imp.v_tickets AS SELECT id, title FROM base.tickets;

-- 4. row-level security
CREATE TABLE base.acl (doc_id int, ok boolean);
INSERT INTO base.acl VALUES (1, true);
CREATE TABLE imp.docs (id int, owner text, body text);
INSERT INTO imp.docs VALUES (1, 'a', 'one'), (2, 'b', 'two');
CREATE FUNCTION fx.visible(text) RETURNS boolean LANGUAGE plpgsql STABLE AS $$BEGIN RETURN $1 = 'a'; END$$;
ALTER TABLE imp.docs ENABLE ROW LEVEL SECURITY;
CREATE POLICY p_fn ON imp.docs FOR SELECT USING (fx.visible(owner));
CREATE POLICY p_sub ON imp.docs FOR SELECT USING (id IN (SELECT doc_id FROM base.acl WHERE ok));

-- 5. triggers
CREATE TABLE base.audit (what text);
CREATE FUNCTION fx.log_it() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO base.audit (what) VALUES (TG_OP); RETURN NEW; END$$;
CREATE FUNCTION fx.log_def() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$BEGIN INSERT INTO base.audit (what) VALUES (TG_OP); RETURN NEW; END$$;
CREATE TABLE imp.tracked (id int, v text);
CREATE TRIGGER t_log AFTER INSERT ON imp.tracked FOR EACH ROW EXECUTE FUNCTION fx.log_it();
CREATE TABLE imp.tracked_def (id int, v text);
CREATE TRIGGER t_def AFTER INSERT ON imp.tracked_def FOR EACH ROW EXECUTE FUNCTION fx.log_def();
CREATE TABLE imp.tracked_when (id int, v text);
CREATE TRIGGER t_when AFTER INSERT ON imp.tracked_when FOR EACH ROW WHEN (fx.bump(NEW.id) > 0) EXECUTE FUNCTION fx.log_def();
CREATE TABLE imp.tracked_del (id int, v text);
INSERT INTO imp.tracked_del VALUES (1, 'a');
CREATE FUNCTION fx.log_del() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO base.audit (what) VALUES (TG_OP); RETURN OLD; END$$;
CREATE TRIGGER t_del BEFORE DELETE ON imp.tracked_del FOR EACH ROW EXECUTE FUNCTION fx.log_del();

-- 6. named parameters
CREATE FUNCTION fx.named_fn(p_id int, p_k int DEFAULT 1) RETURNS int LANGUAGE sql IMMUTABLE AS $$ SELECT p_id + p_k $$;

-- SQL-standard bodies (PostgreSQL 14+): bound when created, kept in prosqlbody, not prosrc.
CREATE SCHEMA atomic_s;
CREATE TABLE atomic_s.t (x int);
INSERT INTO atomic_s.t VALUES (1), (2);
CREATE FUNCTION fx.atomic_count() RETURNS bigint LANGUAGE sql BEGIN ATOMIC SELECT count(*) FROM atomic_s.t; END;
CREATE FUNCTION fx.atomic_plus(a int) RETURNS int LANGUAGE sql RETURN a + (SELECT max(x) FROM atomic_s.t);

-- 7. row-level security on writes (policies TO PUBLIC run as the writer)
CREATE FUNCTION fx.may_write(text) RETURNS boolean LANGUAGE plpgsql STABLE AS $$BEGIN RETURN $1 <> 'z'; END$$;
CREATE TABLE imp.wdocs (id int, owner text, body text);
INSERT INTO imp.wdocs VALUES (1, 'a', 'one'), (2, 'b', 'two');
ALTER TABLE imp.wdocs ENABLE ROW LEVEL SECURITY;
CREATE POLICY w_sel ON imp.wdocs FOR SELECT USING (true);
CREATE POLICY w_ins ON imp.wdocs FOR INSERT WITH CHECK (fx.may_write(owner));
CREATE POLICY w_upd ON imp.wdocs FOR UPDATE USING (id IN (SELECT doc_id FROM base.acl)) WITH CHECK (fx.may_write(owner));
CREATE POLICY w_del ON imp.wdocs FOR DELETE USING (fx.may_write(owner));
CREATE TABLE imp.adocs (id int, owner text);
INSERT INTO imp.adocs VALUES (1, 'a');
ALTER TABLE imp.adocs ENABLE ROW LEVEL SECURITY;
CREATE POLICY a_all ON imp.adocs USING (fx.may_write(owner));

-- 8. triggers on TRUNCATE, through MERGE, INSTEAD OF on a view
CREATE TABLE imp.trunc (id int);
CREATE FUNCTION fx.log_stmt() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO base.audit (what) VALUES (TG_OP); RETURN NULL; END$$;
CREATE TRIGGER t_trunc BEFORE TRUNCATE ON imp.trunc FOR EACH STATEMENT EXECUTE FUNCTION fx.log_stmt();
CREATE TABLE imp.merged (id int PRIMARY KEY, v text);
INSERT INTO imp.merged VALUES (1, 'a');
CREATE TRIGGER t_merge_upd AFTER UPDATE ON imp.merged FOR EACH ROW EXECUTE FUNCTION fx.log_it();
CREATE TABLE base.vt (id int, v text);
CREATE VIEW imp.v_instead AS SELECT id, v FROM base.vt;
CREATE FUNCTION fx.vt_ins() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN INSERT INTO base.vt (id, v) VALUES (NEW.id, NEW.v); RETURN NEW; END$$;
CREATE TRIGGER t_instead INSTEAD OF INSERT ON imp.v_instead FOR EACH ROW EXECUTE FUNCTION fx.vt_ins();

-- 9. user-defined casts (the cast's function runs for the caller)
CREATE TYPE imp.money_t AS (amount numeric);
CREATE FUNCTION fx.int_to_money(int) RETURNS imp.money_t LANGUAGE plpgsql IMMUTABLE AS $$BEGIN RETURN ROW($1::numeric)::imp.money_t; END$$;
CREATE CAST (int AS imp.money_t) WITH FUNCTION fx.int_to_money(int) AS ASSIGNMENT;
CREATE TABLE base.rates (r numeric);
INSERT INTO base.rates VALUES (2);
CREATE FUNCTION fx.text_to_money(text) RETURNS imp.money_t LANGUAGE sql STABLE AS $$ SELECT ROW(length($1) * (SELECT max(r) FROM base.rates))::imp.money_t $$;
CREATE CAST (text AS imp.money_t) WITH FUNCTION fx.text_to_money(text);
CREATE TABLE imp.wallet (id int, m imp.money_t);
INSERT INTO imp.wallet VALUES (1, ROW(1));

REVOKE ALL ON SCHEMA public FROM PUBLIC;
REVOKE ALL ON DATABASE pagila FROM PUBLIC;
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA public FROM PUBLIC;
