-- Objects through which MariaDB runs code or checks privileges implicitly: stored functions and
-- procedures (DEFINER and INVOKER, nested), views (DEFINER and INVOKER, nested, calling functions,
-- updatable), sequences (also behind a column DEFAULT), triggers, generated columns, CHECK
-- constraints, and a second database `other` whose routines resolve unqualified names there.
-- Run as root with no default database. Verified semantics: /work/notes/my-semantics.md;
-- expected.json: each ok case's verified minimal (table-level) grant set, found on MariaDB 10.11.19.
DROP DATABASE IF EXISTS shop;
DROP DATABASE IF EXISTS other;
CREATE DATABASE shop;
CREATE DATABASE other;
USE shop;

CREATE TABLE items (id int PRIMARY KEY, name varchar(20), price decimal(10,2), qty int);
INSERT INTO items VALUES (1, 'a', 10, 5), (2, 'b', 20, 0), (3, 'c', 30, 7);
CREATE TABLE notes (id int PRIMARY KEY, note varchar(50));
INSERT INTO notes VALUES (1, 'x'), (2, 'y');
CREATE TABLE audit (id int AUTO_INCREMENT PRIMARY KEY, msg varchar(100), at_id int);
CREATE TABLE secret (id int PRIMARY KEY, s varchar(20));
INSERT INTO secret VALUES (1, 'k');

-- sequences
CREATE SEQUENCE seq START WITH 100;
CREATE SEQUENCE oseq START WITH 1000;
CREATE TABLE orders (id int PRIMARY KEY DEFAULT (NEXT VALUE FOR oseq), item int, note varchar(20) DEFAULT 'none');

-- generated columns and CHECK constraints
CREATE TABLE olines (id int PRIMARY KEY, qty int, price decimal(10,2),
  total decimal(12,2) AS (qty * price) STORED,
  label varchar(40) AS (concat('#', id)) VIRTUAL,
  CONSTRAINT qty_pos CHECK (qty >= 0),
  CONSTRAINT price_cap CHECK (price < 1000 OR qty = 0));
INSERT INTO olines (id, qty, price) VALUES (1, 2, 3.5), (2, 1, 10);
CREATE TABLE stamped (id int PRIMARY KEY, v int, created varchar(40) DEFAULT (concat('u:', current_user())), n int DEFAULT (v * 2));

-- triggers (run as their definer)
CREATE TABLE tracked (id int PRIMARY KEY, v int);
INSERT INTO tracked VALUES (1, 1), (2, 2);
DELIMITER //
CREATE TRIGGER tracked_bi BEFORE INSERT ON tracked FOR EACH ROW
  BEGIN
    SET NEW.v = coalesce(NEW.v, 0) + (SELECT count(*) FROM secret);
    INSERT INTO audit (msg, at_id) VALUES ('ins', NEW.id);
  END //
DELIMITER ;
CREATE TRIGGER tracked_au AFTER UPDATE ON tracked FOR EACH ROW
  INSERT INTO audit (msg, at_id) VALUES (concat('upd ', OLD.v, '->', NEW.v), NEW.id);
CREATE TRIGGER tracked_bd BEFORE DELETE ON tracked FOR EACH ROW
  INSERT INTO audit (msg, at_id) VALUES ('del', OLD.id);

-- functions
CREATE FUNCTION f_def(x int) RETURNS varchar(50) SQL SECURITY DEFINER
  RETURN (SELECT note FROM notes WHERE id = x);
CREATE FUNCTION f_inv(x int) RETURNS varchar(50) SQL SECURITY INVOKER
  RETURN (SELECT note FROM notes WHERE id = x);
CREATE FUNCTION f_pure(x int) RETURNS int SQL SECURITY INVOKER DETERMINISTIC
  RETURN x * 2;
CREATE FUNCTION f_inv_calls_inv(x int) RETURNS varchar(60) SQL SECURITY INVOKER
  RETURN concat('<', f_inv(x), '>');
CREATE FUNCTION f_inv_calls_def(x int) RETURNS varchar(60) SQL SECURITY INVOKER
  RETURN concat('<', f_def(x), '>');
CREATE FUNCTION f_def_calls_inv(x int) RETURNS varchar(60) SQL SECURITY DEFINER
  RETURN concat('<', f_inv(x), '>');
DELIMITER //
CREATE FUNCTION f_block(x int) RETURNS varchar(50) SQL SECURITY INVOKER
  BEGIN
    DECLARE v varchar(50);
    DECLARE p decimal(10,2) DEFAULT 0;
    SELECT note INTO v FROM notes WHERE id = x;
    SELECT price INTO p FROM items WHERE id = x;
    IF v IS NULL THEN
      SET v = 'none';
    END IF;
    RETURN concat(v, ':', p);
  END //
DELIMITER ;
DELIMITER //
CREATE FUNCTION f_logs(x int) RETURNS int SQL SECURITY INVOKER
  BEGIN
    INSERT INTO audit (msg, at_id) VALUES ('seen', x);
    RETURN x;
  END //
DELIMITER ;
DELIMITER //
CREATE FUNCTION f_def_logs(x int) RETURNS int SQL SECURITY DEFINER
  BEGIN
    INSERT INTO audit (msg, at_id) VALUES ('seen', x);
    RETURN x;
  END //
DELIMITER ;
CREATE FUNCTION f_other(x int) RETURNS varchar(50) SQL SECURITY INVOKER
  RETURN (SELECT note FROM other.onotes WHERE id = x);

-- a user function named like a native one: unqualified calls reach the native REVERSE()
CREATE FUNCTION reverse(x varchar(50)) RETURNS varchar(50) SQL SECURITY INVOKER
  RETURN (SELECT s FROM secret WHERE id = 1);

-- procedures
CREATE PROCEDURE p_def(x int) SQL SECURITY DEFINER
  INSERT INTO audit (msg, at_id) VALUES ('p_def', x);
CREATE PROCEDURE p_inv(x int) SQL SECURITY INVOKER
  INSERT INTO audit (msg, at_id) VALUES ('p_inv', x);
CREATE PROCEDURE p_inv_read(IN x int, OUT r varchar(50)) SQL SECURITY INVOKER
  SELECT note INTO r FROM notes WHERE id = x;
DELIMITER //
CREATE PROCEDURE p_inv_nested(x int) SQL SECURITY INVOKER
  BEGIN
    DECLARE r varchar(50);
    CALL p_inv_read(x, r);
    UPDATE items SET qty = qty + 1 WHERE id = x;
    INSERT INTO audit (msg, at_id) VALUES (f_inv(x), x);
  END //
DELIMITER ;
CREATE PROCEDURE p_def_calls_inv(x int) SQL SECURITY DEFINER
  CALL p_inv_nested(x);
CREATE PROCEDURE p_inv_calls_def(x int) SQL SECURITY INVOKER
  CALL p_def(x);
CREATE PROCEDURE p_result(x int) SQL SECURITY INVOKER
  SELECT id, name FROM items WHERE id <= x;

-- views
CREATE SQL SECURITY DEFINER VIEW v_def AS SELECT id, name, price FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv AS SELECT id, name, price FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv_over_def AS SELECT id, name FROM v_def;
CREATE SQL SECURITY DEFINER VIEW v_def_over_inv AS SELECT id, name FROM v_inv;
CREATE SQL SECURITY INVOKER VIEW v_inv_over_inv AS SELECT id, price FROM v_inv WHERE price > 5;
CREATE SQL SECURITY DEFINER VIEW v_def_fn_inv AS SELECT id, f_inv(id) AS n FROM items;
CREATE SQL SECURITY DEFINER VIEW v_def_fn_def AS SELECT id, f_def(id) AS n FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv_fn_def AS SELECT id, f_def(id) AS n FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv_fn_inv AS SELECT id, f_inv(id) AS n FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv_fn_pure AS SELECT id, f_pure(qty) AS q2, name FROM items;
CREATE SQL SECURITY INVOKER VIEW v_inv_join AS
  SELECT i.id, i.name, n.note FROM items i JOIN notes n ON n.id = i.id;
CREATE SQL SECURITY DEFINER VIEW v_def_check AS SELECT id, name, qty FROM items WHERE qty >= 0 WITH CHECK OPTION;
CREATE SQL SECURITY INVOKER VIEW v_inv_seq AS SELECT id, item FROM orders;

-- a second database; its routines resolve unqualified names in `other`
USE other;
CREATE TABLE onotes (id int PRIMARY KEY, note varchar(50));
INSERT INTO onotes VALUES (1, 'other-x'), (2, 'other-y');
CREATE TABLE notes (id int PRIMARY KEY, note varchar(50));
INSERT INTO notes VALUES (1, 'o1');
CREATE TABLE stock (item int PRIMARY KEY, level int);
INSERT INTO stock VALUES (1, 50), (2, 60);
CREATE FUNCTION f_inv(x int) RETURNS varchar(50) SQL SECURITY INVOKER
  RETURN (SELECT note FROM notes WHERE id = x);
CREATE PROCEDURE p_inv(x int) SQL SECURITY INVOKER
  UPDATE stock SET level = level - 1 WHERE item = x;
CREATE PROCEDURE p_uses_f(x int) SQL SECURITY INVOKER
  INSERT INTO shop.audit (msg, at_id) VALUES (f_inv(x), x);
CREATE SQL SECURITY INVOKER VIEW v_stock AS SELECT s.item, s.level, i.name FROM stock s JOIN shop.items i ON i.id = s.item;
CREATE SQL SECURITY DEFINER VIEW v_stock_def AS SELECT item, level FROM stock;
CREATE SQL SECURITY INVOKER VIEW v_fn AS SELECT item, f_inv(item) AS n FROM stock;
