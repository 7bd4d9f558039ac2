-- expect: ok
SELECT * FROM imp.v_invoker_fn
