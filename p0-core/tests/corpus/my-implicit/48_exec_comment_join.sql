-- expect: ok
SELECT i.id FROM items i /*!50000 JOIN secret s ON s.id = i.id */
