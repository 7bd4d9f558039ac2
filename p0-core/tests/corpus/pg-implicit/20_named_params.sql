-- expect: ok
SELECT fx.named_fn(3)
