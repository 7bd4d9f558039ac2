-- expect: refuse
LISTEN channel
