-- expect: ok
SELECT s.level FROM other.stock s JOIN other.onotes o ON o.id = s.item
