-- expect: ok
SELECT fx.atomic_count()
