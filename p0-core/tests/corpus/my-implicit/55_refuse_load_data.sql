-- expect: refuse
LOAD DATA INFILE '/etc/hostname' INTO TABLE notes
