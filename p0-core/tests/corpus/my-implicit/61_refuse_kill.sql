-- expect: refuse
KILL CONNECTION 1
