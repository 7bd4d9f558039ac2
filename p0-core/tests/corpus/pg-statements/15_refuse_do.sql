-- expect: refuse
DO $$BEGIN PERFORM 1; END$$
