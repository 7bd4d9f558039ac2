-- expect: ok
SELECT fx.atomic_plus(1)
