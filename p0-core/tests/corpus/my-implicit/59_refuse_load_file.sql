-- expect: refuse
SELECT LOAD_FILE('/etc/hostname')
