-- expect: ok
SELECT id FROM items /*!50700 JOIN secret USING (id) */
