-- Applied after pagila and ../shared/corpus/pg-cases/setup.sql: objects that exercise the
-- parts of PostgreSQL's privilege rules the shared corpus does not.
CREATE VIEW sales.inv_orders WITH (security_invoker = true) AS SELECT order_id, total FROM sales.orders;
CREATE FUNCTION sales.order_count() RETURNS bigint LANGUAGE sql AS 'SELECT count(*) FROM sales.orders';
CREATE FUNCTION sales.add(a int, b int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b';
CREATE FUNCTION sales.add(a int, b int, c int) RETURNS int LANGUAGE sql IMMUTABLE AS 'SELECT a + b + c';
CREATE FUNCTION sales.definer_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER AS 'SELECT count(*) FROM sales.order_lines';
CREATE FUNCTION sales.default_sku() RETURNS text LANGUAGE sql AS $$SELECT 'SKU'$$;
CREATE FUNCTION sales.lines_for(o int) RETURNS SETOF sales.order_lines LANGUAGE sql STABLE AS 'SELECT * FROM sales.order_lines WHERE order_id = o';
CREATE TABLE sales.notes (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY, body text);
CREATE TABLE sales.items (id serial PRIMARY KEY, sku text DEFAULT sales.default_sku(), qty int DEFAULT 1);
CREATE TABLE sales."Mixed Case" ("Col" int, plain int);
INSERT INTO sales."Mixed Case" VALUES (1, 2);
CREATE SEQUENCE sales.ticket_seq;
CREATE PROCEDURE sales.touch_orders() LANGUAGE sql AS $$UPDATE sales.orders SET total = total WHERE order_id = 1$$;
CREATE TABLE sales.targets (sku text PRIMARY KEY, qty int);
INSERT INTO sales.targets VALUES ('A-1', 5), ('B-2', 3);
REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA sales FROM PUBLIC;
REVOKE EXECUTE ON ALL PROCEDURES IN SCHEMA sales FROM PUBLIC;
