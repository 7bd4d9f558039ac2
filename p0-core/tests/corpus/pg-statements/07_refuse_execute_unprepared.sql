-- expect: refuse
EXECUTE q(1)
