-- expect: refuse
DECLARE c CURSOR FOR SELECT 1
