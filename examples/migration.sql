-- A data migration: what grants would it need?
UPDATE sales.orders SET total = round(total, 2) WHERE total IS NOT NULL;
INSERT INTO sales.audit_log (note) SELECT 'rounded ' || count(*) FROM sales.orders;
DELETE FROM sales.tmp_import;
