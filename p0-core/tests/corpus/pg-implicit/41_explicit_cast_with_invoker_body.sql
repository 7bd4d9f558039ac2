-- expect: ok
SELECT CAST('abc'::text AS imp.money_t)
