-- ok: select star
SELECT * FROM orders
-- ok: select columns where
SELECT id, total FROM orders WHERE customer_id = 1
-- ok: backtick names
SELECT `id` FROM `shop`.`orders`
-- ok: database qualified
SELECT * FROM shop.order_lines
-- ok: other database
SELECT note FROM other.audit
-- ok: cross database join
SELECT o.id, a.note FROM orders o JOIN other.audit a ON a.id = o.id
-- ok: mixed case backticks
SELECT `Col` FROM `Mixed Case`
-- ok: join
SELECT o.id, l.sku FROM orders o JOIN order_lines l ON l.order_id = o.id
-- ok: left join
SELECT c.name, o.total FROM customers c LEFT JOIN orders o ON o.customer_id = c.id
-- ok: join using
SELECT * FROM orders JOIN order_lines ON order_lines.order_id = orders.id
-- ok: subquery in where
SELECT name FROM customers WHERE id IN (SELECT customer_id FROM orders)
-- ok: exists
SELECT name FROM customers c WHERE EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.id)
-- ok: derived table
SELECT t.n FROM (SELECT count(*) AS n FROM order_lines) t
-- ok: union
SELECT sku FROM order_lines UNION SELECT sku FROM targets
-- ok: group by having
SELECT customer_id, sum(total) FROM orders GROUP BY customer_id HAVING sum(total) > 1
-- ok: cte
WITH t AS (SELECT sku FROM targets) SELECT * FROM t
-- ok: view
SELECT * FROM big_orders
-- ok: builtins
SELECT concat(name, '!'), upper(name), now(), ifnull(name, '') FROM customers
-- ok: stored function
SELECT shop.double_it(2)
-- ok: order limit
SELECT * FROM orders ORDER BY total DESC LIMIT 1
-- ok: select for update
SELECT * FROM targets WHERE sku = 'A-1' FOR UPDATE
-- ok: lock in share mode
SELECT * FROM targets WHERE sku = 'A-1' LOCK IN SHARE MODE
-- ok: insert values
INSERT INTO order_lines (order_id, sku, qty) VALUES (1, 'C', 1)
-- ok: insert auto increment
INSERT INTO orders (customer_id, total) VALUES (3, 1.5)
-- ok: insert without columns
INSERT INTO order_lines VALUES (1, 'D', 4)
-- ok: insert set
INSERT INTO targets SET sku = 'Z', qty = 1
-- ok: insert select
INSERT INTO order_lines (order_id, sku, qty) SELECT id, 'E', 1 FROM orders
-- ok: insert ignore
INSERT IGNORE INTO targets (sku, qty) VALUES ('A-1', 1)
-- ok: on duplicate key update constant
INSERT INTO targets (sku, qty) VALUES ('A-1', 1) ON DUPLICATE KEY UPDATE qty = 0
-- ok: on duplicate key update values
INSERT INTO targets (sku, qty) VALUES ('A-1', 1) ON DUPLICATE KEY UPDATE qty = VALUES(qty)
-- ok: on duplicate key update reading row
INSERT INTO targets (sku, qty) VALUES ('A-1', 1) ON DUPLICATE KEY UPDATE qty = qty + 1
-- ok: replace
REPLACE INTO targets (sku, qty) VALUES ('A-1', 7)
-- ok: update constant
UPDATE order_lines SET qty = 1
-- ok: update with where
UPDATE orders SET total = 0 WHERE id = 2
-- ok: update self reference
UPDATE order_lines SET qty = qty + 1
-- ok: multi table update
UPDATE order_lines l JOIN targets t ON t.sku = l.sku SET l.qty = t.qty
-- ok: multi table update both
UPDATE order_lines l JOIN targets t ON t.sku = l.sku SET l.qty = 1, t.qty = 2
-- ok: update limit
UPDATE targets SET qty = 0 WHERE qty > 100 LIMIT 1
-- ok: delete all
DELETE FROM order_lines
-- ok: delete where
DELETE FROM order_lines WHERE sku = 'none'
-- ok: multi table delete
DELETE l FROM order_lines l JOIN orders o ON o.id = l.order_id WHERE o.total > 100
-- ok: multi table delete using
DELETE FROM order_lines USING order_lines JOIN orders ON orders.id = order_lines.order_id WHERE orders.total > 100
-- ok: delete with subquery
DELETE FROM targets WHERE sku IN (SELECT sku FROM order_lines WHERE qty = 0)
-- ok: script
SELECT count(*) FROM orders; UPDATE targets SET qty = 1
-- ok: transaction control
START TRANSACTION; SELECT 1 FROM customers; COMMIT
-- ok: set session variable
SET @x = 1; SELECT @x FROM customers
-- ok: ordinary comments skipped
SELECT /* a comment */ name FROM customers # another
-- ok: executable comment mariadb runs
SELECT name FROM customers WHERE id IN (1 /*M! , (SELECT max(order_id) FROM order_lines) */)
-- ok: executable comment versioned runs
SELECT name FROM customers /*!100100 WHERE id IN (SELECT customer_id FROM orders) */
-- ok: executable comment unversioned runs
SELECT name FROM customers /*! WHERE id IN (SELECT customer_id FROM orders) */
-- ok: executable comment newer version skipped
SELECT name FROM customers /*!999999 WHERE id IN (SELECT customer_id FROM orders) */
-- ok: executable comment mysql 8 version skipped by mariadb
SELECT name FROM customers /*!80000 WHERE id IN (SELECT customer_id FROM orders) */
-- ok: executable comment mariadb newer version skipped
SELECT name FROM customers /*M!999999 WHERE id IN (SELECT customer_id FROM orders) */
-- ok: executable comment string holds the close
SELECT name FROM customers WHERE name <> /*! '*/' */ 'x'
-- ok: set session ordinary variable
SET SESSION sort_buffer_size = 1048576; SELECT name FROM customers
-- ok: set at at session ordinary variable
SET @@session.max_statement_time = 10, @@sql_select_limit = 5; SELECT name FROM customers
-- ok: set several user variables reading a table
SET @a = 1, @b = (SELECT max(qty) FROM targets); SELECT @b
-- ok: set sql mode plain
SET sql_mode = 'STRICT_TRANS_TABLES'; SELECT name FROM customers
-- ok: set names utf8mb4
SET NAMES utf8mb4; SELECT name FROM customers
-- ok: multi table update unqualified set with derived table first
UPDATE (SELECT sku FROM order_lines) d JOIN targets t ON d.sku = t.sku SET qty = 0
-- ok: multi table update unqualified set owner is the only table
UPDATE targets t JOIN (SELECT sku, qty AS q FROM order_lines) d ON d.sku = t.sku SET qty = d.q
-- ok: multi table update comma form
UPDATE order_lines l, targets t SET l.qty = t.qty WHERE t.sku = l.sku
-- ok: delete alias from using
DELETE FROM a USING order_lines AS a JOIN orders o ON o.id = a.order_id WHERE o.total > 100
-- ok: delete alias from using single table
DELETE FROM a USING order_lines AS a WHERE a.qty = 99
-- ok: delete alias named like another table
DELETE FROM targets USING order_lines AS targets JOIN orders o ON o.id = targets.order_id WHERE o.total > 100
-- ok: delete target alias named like another table
DELETE targets FROM order_lines AS targets JOIN orders o ON o.id = targets.order_id WHERE o.total > 100
-- ok: cte shadows a table
WITH orders AS (SELECT 1 AS id) SELECT o.id FROM orders o
-- ok: recursive cte shadows a table
WITH RECURSIVE targets AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM targets WHERE n < 3) SELECT n FROM targets
-- ok: recursive cte refers to a later one
WITH RECURSIVE a AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM b WHERE n < 3), b AS (SELECT n FROM a) SELECT n FROM a
-- ok: cte shadows a table inside a subquery of an update
UPDATE targets SET qty = (WITH order_lines AS (SELECT 5 AS q) SELECT q FROM order_lines) WHERE sku = 'none'
-- ok: json table literal
SELECT jt.a FROM JSON_TABLE('[{"a":1}]', '$[*]' COLUMNS (a INT PATH '$.a')) AS jt
-- ok: json table over a column
SELECT d.id, jt.a FROM docs d JOIN JSON_TABLE(d.body, '$[*]' COLUMNS (a INT PATH '$.a')) AS jt WHERE d.id = 1
-- ok: for system time all
SELECT sku, price FROM prices FOR SYSTEM_TIME ALL
-- ok: for system time as of
SELECT sku FROM prices FOR SYSTEM_TIME AS OF TIMESTAMP '2020-01-01 00:00:00' WHERE price > 1
-- ok: for system time between
SELECT p.sku FROM prices FOR SYSTEM_TIME BETWEEN '2000-01-01' AND '2100-01-01' AS p
-- ok: use other database
USE other; SELECT note FROM audit
-- ok: use then unqualified names resolve there
USE other; SELECT a.note, o.total FROM audit a JOIN shop.orders o ON o.id = a.id
-- ok: handler open read close
HANDLER targets OPEN AS h; HANDLER h READ FIRST; HANDLER h CLOSE
-- ok: handler qualified read by key
HANDLER shop.targets OPEN; HANDLER targets READ `PRIMARY` = ('A-1'); HANDLER targets CLOSE
-- ok: select into user variable
SELECT qty INTO @q FROM targets WHERE sku = 'A-1'
-- ok: select into several user variables
SELECT sku, qty INTO @s, @q FROM targets LIMIT 1; SELECT @s, @q
-- ok: lock in share mode joined
SELECT l.sku FROM order_lines l JOIN targets t ON t.sku = l.sku LOCK IN SHARE MODE
-- ok: sequence nextval
SELECT NEXTVAL(order_seq)
-- ok: sequence next value for
SELECT NEXT VALUE FOR shop.order_seq
-- ok: sequence lastval
SELECT LASTVAL(order_seq)
-- ok: sequence previous value for
SELECT PREVIOUS VALUE FOR order_seq
-- ok: sequence setval
SELECT SETVAL(order_seq, 1000)
-- ok: sequence nextval in insert
INSERT INTO order_lines (order_id, sku, qty) VALUES (NEXT VALUE FOR order_seq, 'S', 1)
-- ok: sequence nextval with a table
SELECT NEXTVAL(order_seq), name FROM customers
-- ok: sequence read as a table
SELECT next_not_cached_value FROM order_seq
-- refuse: drop table
DROP TABLE orders
-- refuse: alter table
ALTER TABLE orders ADD COLUMN x int
-- refuse: create table
CREATE TABLE t2 (a int)
-- refuse: grant
GRANT ALL ON *.* TO 'x'@'%'
-- refuse: create user
CREATE USER 'evil'@'%' IDENTIFIED BY 'x'
-- refuse: set password
SET PASSWORD FOR 'root'@'%' = PASSWORD('x')
-- refuse: load file
SELECT LOAD_FILE('/etc/passwd')
-- refuse: into outfile
SELECT * FROM orders INTO OUTFILE '/tmp/x'
-- refuse: load data
LOAD DATA INFILE '/etc/passwd' INTO TABLE orders
-- refuse: garbage
SELEC * FORM orders
-- refuse: set role
SET ROLE admin
-- refuse: truncate needs drop
TRUNCATE TABLE order_lines
-- refuse: statement hidden in mariadb comment
SELECT 1 FROM customers; /*M! DROP TABLE orders */
-- refuse: grant hidden in executable comment
SELECT 1 FROM customers; /*!40000 GRANT ALL ON *.* TO 'x'@'%' */
-- refuse: outfile hidden in executable comment
SELECT * FROM orders /*M!100000 INTO OUTFILE '/tmp/x' */
-- refuse: load file hidden in executable comment
SELECT name /*!, LOAD_FILE('/etc/passwd') */ FROM customers
-- refuse: semicolon inside executable comment
SELECT 1 FROM customers /*! ; DELETE FROM orders */
-- refuse: comment nested in executable comment
SELECT 1 /*! , (SELECT /* x */ 1) */ FROM customers
-- refuse: executable comment left open
SELECT 1 FROM customers /*! WHERE 1 = 1
-- refuse: set global
SET GLOBAL max_connections = 1000
-- refuse: set at at global
SET @@global.sort_buffer_size = 1048576
-- refuse: set global in a list
SET @x = 1, GLOBAL max_connections = 1000
-- refuse: set sql log bin
SET sql_log_bin = 0
-- refuse: set session sql log bin
SET SESSION sql_log_bin = 0; DELETE FROM orders
-- refuse: set at at session gtid seq no
SET @@session.gtid_seq_no = 5
-- refuse: set pseudo thread id
SET pseudo_thread_id = 1
-- refuse: set binlog format
SET binlog_format = 'STATEMENT'
-- refuse: set server id in a list
SET @a = 1, server_id = 7
-- refuse: set sql mode no backslash escapes
SET sql_mode = 'NO_BACKSLASH_ESCAPES'
-- refuse: set sql mode ansi
SET SESSION sql_mode = 'ANSI'
-- refuse: set names gbk
SET NAMES gbk
-- refuse: set character set client sjis
SET character_set_client = sjis
-- refuse: set global hidden in executable comment
SELECT 1 FROM customers; /*!40101 SET GLOBAL max_connections = 1 */
-- refuse: multi table update unqualified set ambiguous without columns
UPDATE order_lines l JOIN targets t ON t.sku = l.sku SET qty = 1
-- refuse: multi table delete target names no table of the statement
DELETE orders FROM order_lines l JOIN orders o ON o.id = l.order_id
-- refuse: use database with nothing in it
USE other; SELECT 1
-- refuse: handler read with a query
HANDLER targets OPEN; HANDLER targets READ FIRST WHERE qty = (SELECT max(qty) FROM order_lines)
-- refuse: for system time with a query
SELECT sku FROM prices FOR SYSTEM_TIME AS OF (SELECT max(placed_at) FROM orders)
-- refuse: select into a table
SELECT * INTO newtable FROM orders
-- refuse: sequence nextval of an expression
SELECT NEXTVAL(concat('order', '_seq'))
-- refuse: handler open with more after the alias
HANDLER targets OPEN AS h, (SELECT max(sku) FROM order_lines)
-- refuse: select into user variable after from is named
SELECT qty FROM targets WHERE sku = 'A-1' INTO @q
