-- expect: refuse
SELECT id FROM items /*!50000 INTO OUTFILE '/tmp/p0-x.txt' */
