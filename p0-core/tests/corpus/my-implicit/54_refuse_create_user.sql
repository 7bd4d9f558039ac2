-- expect: refuse
CREATE USER 'evil'@'%' IDENTIFIED BY 'x'
