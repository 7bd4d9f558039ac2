-- expect: ok
SELECT NEXTVAL(seq)
