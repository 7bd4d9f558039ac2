-- expect: refuse
CREATE DEFINER = `root`@`localhost` SQL SECURITY DEFINER VIEW v_esc AS SELECT * FROM secret
