-- expect: ok
SELECT 5::imp.money_t
