-- expect: refuse
SELECT id, name FROM items INTO OUTFILE '/tmp/p0-out.txt'
