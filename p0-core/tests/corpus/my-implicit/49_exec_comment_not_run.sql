-- expect: ok
SELECT id FROM items /*M!999999 JOIN secret USING (id) */
