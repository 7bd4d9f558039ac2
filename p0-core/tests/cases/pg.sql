-- ok: select star
SELECT * FROM actor
-- ok: columns with where
SELECT first_name, last_name FROM actor WHERE actor_id < 5
-- ok: count star
SELECT count(*) FROM film
-- ok: quoted table name
SELECT "title" FROM "film" LIMIT 1
-- ok: schema qualified
SELECT * FROM public.language
-- ok: inner join
SELECT f.title, l.name FROM film f JOIN language l ON l.language_id = f.language_id
-- ok: join using
SELECT title, name FROM film JOIN language USING (language_id) LIMIT 3
-- ok: natural join
SELECT * FROM film_category NATURAL JOIN category LIMIT 2
-- ok: left join
SELECT c.name, count(fc.film_id) FROM category c LEFT JOIN film_category fc ON fc.category_id = c.category_id GROUP BY c.name
-- ok: right join
SELECT a.address, c.city FROM address a RIGHT JOIN city c ON c.city_id = a.city_id LIMIT 5
-- ok: full join
SELECT * FROM store s FULL JOIN staff st ON st.store_id = s.store_id
-- ok: cross join
SELECT count(*) FROM language CROSS JOIN category
-- ok: comma join
SELECT count(*) FROM country, city WHERE city.country_id = country.country_id
-- ok: lateral subquery
SELECT c.name, x.n FROM category c, LATERAL (SELECT count(*) AS n FROM film_category fc WHERE fc.category_id = c.category_id) x
-- ok: lateral join
SELECT s.store_id, t.staff_id FROM store s LEFT JOIN LATERAL (SELECT staff_id FROM staff WHERE staff.store_id = s.store_id LIMIT 1) t ON true
-- ok: subquery in from
SELECT avg(n) FROM (SELECT count(*) AS n FROM rental GROUP BY customer_id) t
-- ok: in subquery
SELECT title FROM film WHERE film_id IN (SELECT film_id FROM inventory WHERE store_id = 1) LIMIT 3
-- ok: exists correlated
SELECT first_name FROM customer c WHERE EXISTS (SELECT 1 FROM rental r WHERE r.customer_id = c.customer_id) LIMIT 3
-- ok: scalar subquery in select
SELECT title, (SELECT name FROM language WHERE language.language_id = film.language_id) FROM film LIMIT 3
-- ok: any array subquery
SELECT * FROM city WHERE country_id = ANY (SELECT country_id FROM country WHERE country LIKE 'A%')
-- ok: cte
WITH top AS (SELECT customer_id, sum(amount) s FROM payment GROUP BY customer_id) SELECT * FROM top ORDER BY s DESC LIMIT 5
-- ok: two ctes referencing each other
WITH a AS (SELECT film_id FROM film_actor WHERE actor_id = 1), b AS (SELECT title FROM film WHERE film_id IN (SELECT film_id FROM a)) SELECT * FROM b
-- ok: recursive cte
WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) SELECT i FROM n
-- ok: recursive cte over a table
WITH RECURSIVE c(id) AS (SELECT min(city_id) FROM city UNION ALL SELECT id + 1 FROM c WHERE id < 3) SELECT * FROM c JOIN city ON city.city_id = c.id
-- ok: cte shadowing a real table name
WITH film AS (SELECT 1 AS film_id) SELECT * FROM film
-- ok: union
SELECT first_name FROM actor UNION SELECT first_name FROM customer
-- ok: intersect
SELECT customer_id FROM customer INTERSECT SELECT customer_id FROM payment
-- ok: except
SELECT customer_id FROM customer EXCEPT SELECT customer_id FROM rental
-- ok: window function
SELECT title, rank() OVER (PARTITION BY rating ORDER BY length) FROM film LIMIT 5
-- ok: named window
SELECT amount, sum(amount) OVER w FROM payment WINDOW w AS (ORDER BY payment_date) LIMIT 3
-- ok: values list
VALUES (1, 'a'), (2, 'b')
-- ok: values in from
SELECT * FROM (VALUES (1), (2)) v(x) JOIN language ON language_id = x
-- ok: values joined to a table
SELECT name FROM category JOIN (VALUES (1), (2)) AS v(id) ON v.id = category.category_id
-- ok: select without from
SELECT 1 + 1, now(), current_user
-- ok: builtin functions
SELECT upper(title), length(description), coalesce(original_language_id, 0) FROM film LIMIT 2
-- ok: generate_series
SELECT g FROM generate_series(1, 3) g
-- ok: case and cast
SELECT CASE WHEN rental_rate > 2 THEN 'high' ELSE 'low' END, rental_rate::text FROM film LIMIT 2
-- ok: having
SELECT rating, count(*) FROM film GROUP BY rating HAVING count(*) > 10
-- ok: distinct on
SELECT DISTINCT ON (store_id) store_id, first_name FROM staff ORDER BY store_id, staff_id
-- ok: order by and offset
SELECT title FROM film ORDER BY title OFFSET 5 LIMIT 5
-- ok: view
SELECT * FROM customer_list LIMIT 5
-- ok: view joined with table
SELECT fl.title, l.name FROM film_list fl JOIN language l ON l.name = 'English' LIMIT 2
-- ok: view in other schema
SELECT * FROM sales.big_orders
-- ok: materialized view
SELECT * FROM rental_by_category
-- ok: partitioned parent
SELECT sum(amount) FROM payment WHERE customer_id = 5
-- ok: partition directly
SELECT count(*) FROM payment_p2022_01
-- ok: security invoker view
SELECT * FROM sales.inv_orders
-- ok: other schema join
SELECT o.order_id, l.sku FROM sales.orders o JOIN sales.order_lines l USING (order_id)
-- ok: mixed case quoted identifiers
SELECT "Col" FROM sales."Mixed Case"
-- ok: user function in select
SELECT inventory_in_stock(1)
-- ok: sql function reading a table
SELECT sales.order_count()
-- ok: overloaded function by arity
SELECT sales.add(1, 2)
-- ok: overloaded function three args
SELECT sales.add(1, 2, 3)
-- ok: security definer function
SELECT sales.definer_count()
-- ok: set returning user function in from
SELECT * FROM sales.lines_for(1)
-- ok: plpgsql function with two statements
SELECT film_in_stock(1, 1)
-- ok: function in where clause
SELECT inventory_id FROM inventory WHERE inventory_in_stock(inventory_id) LIMIT 2
-- ok: nextval
SELECT nextval('sales.ticket_seq')
-- ok: currval after nextval
SELECT nextval('sales.ticket_seq'), currval('sales.ticket_seq')
-- ok: setval
SELECT setval('sales.ticket_seq', 10)
-- ok: sequence as regclass
SELECT nextval('sales.ticket_seq'::regclass)
-- ok: select from sequence
SELECT last_value FROM sales.ticket_seq
-- ok: select for update
SELECT * FROM sales.orders WHERE order_id = 1 FOR UPDATE
-- ok: select for share of one table
SELECT o.order_id FROM sales.orders o JOIN sales.order_lines l USING (order_id) FOR SHARE OF o
-- ok: select for no key update
SELECT * FROM sales.orders WHERE order_id = 1 FOR NO KEY UPDATE
-- ok: select for key share of one table
SELECT o.order_id FROM sales.orders o JOIN sales.order_lines l USING (order_id) FOR KEY SHARE OF o
-- ok: explain
EXPLAIN SELECT * FROM film WHERE film_id = 1
-- ok: explain analyze of a read
EXPLAIN ANALYZE SELECT count(*) FROM language
-- ok: insert values
INSERT INTO sales.order_lines (order_id, sku, qty) VALUES (1, 'A-1', 2)
-- ok: insert default serial
INSERT INTO sales.orders (customer_id, total) VALUES (3, 9.99)
-- ok: insert default values
INSERT INTO sales.orders (customer_id) VALUES (4)
-- ok: insert explicit default keyword
INSERT INTO sales.orders (order_id, customer_id) VALUES (DEFAULT, 5)
-- ok: insert without column list
INSERT INTO sales.order_lines VALUES (1, 'Z-9', 1)
-- ok: insert identity column needs no sequence
INSERT INTO sales.notes (body) VALUES ('hello')
-- ok: insert with function default
INSERT INTO sales.items (qty) VALUES (3)
-- ok: insert select
INSERT INTO sales.order_lines (order_id, sku, qty) SELECT order_id, 'COPY', 1 FROM sales.orders
-- ok: insert returning id
INSERT INTO sales.orders (customer_id) VALUES (6) RETURNING order_id
-- ok: insert returning star
INSERT INTO sales.order_lines (order_id, sku, qty) VALUES (1, 'R', 1) RETURNING *
-- ok: insert on conflict do nothing
INSERT INTO sales.targets (sku, qty) VALUES ('A-1', 9) ON CONFLICT DO NOTHING
-- ok: insert on conflict column do nothing
INSERT INTO sales.targets (sku, qty) VALUES ('A-1', 9) ON CONFLICT (sku) DO NOTHING
-- ok: upsert with excluded
INSERT INTO category (category_id, name) VALUES (1, 'Action') ON CONFLICT (category_id) DO UPDATE SET name = EXCLUDED.name
-- ok: upsert reading the existing row
INSERT INTO sales.targets (sku, qty) VALUES ('A-1', 1) ON CONFLICT (sku) DO UPDATE SET qty = sales.targets.qty + EXCLUDED.qty
-- ok: upsert with where
INSERT INTO sales.targets AS t (sku, qty) VALUES ('B-2', 1) ON CONFLICT (sku) DO UPDATE SET qty = 0 WHERE t.qty > 1
-- ok: update constant no where
UPDATE sales.order_lines SET qty = 1
-- ok: update self reference
UPDATE sales.order_lines SET qty = qty
-- ok: update with where
UPDATE sales.orders SET total = 0 WHERE order_id = 2
-- ok: update from
UPDATE sales.order_lines l SET qty = t.qty FROM sales.targets t WHERE t.sku = l.sku
-- ok: update with subquery
UPDATE sales.orders SET total = (SELECT count(*) FROM sales.order_lines) WHERE order_id = 1
-- ok: update returning
UPDATE staff SET email = email WHERE staff_id = 1 RETURNING staff_id, email
-- ok: update multiple columns tuple
UPDATE sales.targets SET (qty, sku) = (1, 'X') WHERE sku = 'B-2'
-- ok: update with trigger
UPDATE actor SET first_name = 'PENELOPE' WHERE actor_id = 1
-- ok: delete all
DELETE FROM sales.order_lines
-- ok: delete with where
DELETE FROM sales.order_lines WHERE sku = 'none'
-- ok: delete using
DELETE FROM sales.order_lines l USING sales.orders o WHERE o.order_id = l.order_id AND o.total > 100
-- ok: delete not exists
DELETE FROM sales.orders o WHERE NOT EXISTS (SELECT 1 FROM sales.order_lines l WHERE l.order_id = o.order_id)
-- ok: delete returning
DELETE FROM sales.targets WHERE sku = 'A-1' RETURNING qty
-- ok: data modifying cte
WITH moved AS (DELETE FROM sales.order_lines WHERE qty = 0 RETURNING *) INSERT INTO sales.targets (sku, qty) SELECT sku, qty FROM moved ON CONFLICT DO NOTHING
-- ok: cte with update returning
WITH u AS (UPDATE sales.targets SET qty = qty + 1 RETURNING sku) SELECT count(*) FROM u
-- ok: merge
MERGE INTO sales.targets t USING sales.order_lines l ON t.sku = l.sku WHEN MATCHED THEN UPDATE SET qty = l.qty WHEN NOT MATCHED THEN INSERT (sku, qty) VALUES (l.sku, l.qty)
-- ok: merge delete
MERGE INTO sales.targets t USING (VALUES ('A-1')) s(sku) ON t.sku = s.sku WHEN MATCHED THEN DELETE
-- ok: truncate
TRUNCATE sales.order_lines
-- ok: truncate table keyword
TRUNCATE TABLE sales.targets
-- ok: copy to stdout
COPY sales.orders TO STDOUT
-- ok: copy columns to stdout
COPY sales.orders (order_id, total) TO STDOUT
-- ok: copy query to stdout
COPY (SELECT title FROM film LIMIT 2) TO STDOUT
-- ok: call procedure
CALL sales.touch_orders()
-- ok: multi statement script
SELECT count(*) FROM actor; SELECT count(*) FROM film; UPDATE sales.targets SET qty = 1
-- ok: transaction control in script
BEGIN; SELECT 1 FROM language; COMMIT
-- ok: set search_path then unqualified
SET search_path = sales, public; SELECT count(*) FROM orders
-- ok: set local setting
SET statement_timeout = '5s'; SELECT count(*) FROM category
-- ok: temp table
CREATE TEMPORARY TABLE t_tmp AS SELECT * FROM language
-- ok: string that looks like sql
SELECT 'DROP TABLE film; --' AS s FROM language LIMIT 1
-- ok: comments in sql
SELECT /* film */ count(*) -- actor
FROM category
-- ok: dollar quoted literal
SELECT $$ it's from film $$ FROM country LIMIT 1
-- ok: qualified column reference with schema
SELECT sales.orders.total FROM sales.orders
-- ok: join on expression with function
SELECT count(*) FROM customer c JOIN address a ON lower(a.address) = lower(c.email)
-- ok: nested set operations
(SELECT actor_id FROM film_actor EXCEPT SELECT actor_id FROM actor WHERE actor_id > 100) UNION ALL SELECT 1
-- ok: aggregate filter
SELECT count(*) FILTER (WHERE rental_rate > 2) FROM film
-- ok: in list and between
SELECT * FROM rental WHERE rental_id IN (1, 2, 3) AND rental_date BETWEEN '2000-01-01' AND '2030-01-01'
-- ok: exists in select list
SELECT EXISTS (SELECT 1 FROM staff) FROM store
-- refuse: drop table
DROP TABLE sales.orders
-- refuse: alter table
ALTER TABLE film ADD COLUMN x int
-- refuse: create index
CREATE INDEX ON film (title)
-- refuse: grant role
GRANT postgres TO CURRENT_USER
-- refuse: grant privileges
GRANT SELECT ON film TO PUBLIC
-- refuse: revoke
REVOKE SELECT ON film FROM PUBLIC
-- refuse: create role
CREATE ROLE evil SUPERUSER
-- refuse: alter role
ALTER ROLE postgres PASSWORD 'x'
-- refuse: set role
SET ROLE postgres
-- refuse: set session authorization
SET SESSION AUTHORIZATION postgres
-- refuse: copy program
COPY film TO PROGRAM 'cat > /tmp/x'
-- refuse: copy to file
COPY film TO '/tmp/film.csv'
-- refuse: copy from file
COPY film FROM '/etc/passwd'
-- refuse: pg_read_file
SELECT pg_read_file('/etc/passwd')
-- refuse: pg_terminate_backend
SELECT pg_terminate_backend(1)
-- refuse: lo_import
SELECT lo_import('/etc/passwd')
-- refuse: alter system
ALTER SYSTEM SET work_mem = '1GB'
-- refuse: truncate restart identity
TRUNCATE sales.orders RESTART IDENTITY
-- refuse: refresh materialized view
REFRESH MATERIALIZED VIEW rental_by_category
-- refuse: vacuum
VACUUM film
-- refuse: garbage
SELEC * FORM film
-- refuse: unterminated string
SELECT 'abc FROM film
-- refuse: select into creates a table
SELECT * INTO new_film FROM film
-- refuse: create function
CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'
-- refuse: refused statement in script
SELECT 1; DROP TABLE film
-- refuse: set_config role
SELECT set_config('role', 'postgres', false)
-- refuse: unknown table
SELECT * FROM no_such_table
-- refuse: empty input
;
