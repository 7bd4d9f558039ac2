-- expect: refuse
GRANT SELECT ON shop.secret TO CURRENT_USER
