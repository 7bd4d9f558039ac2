-- expect: ok
MERGE INTO imp.merged m USING (SELECT 1 AS id) s ON m.id = s.id WHEN MATCHED THEN UPDATE SET v = 'b'
