-- A completed upload's object is moved to patients/<patient_id>/files/<id>, a key
-- no upload URL can write; the row follows it. The old check (named by PostgreSQL)
-- pinned every key to /uploads/.
DO $$
DECLARE
    name text;
BEGIN
    SELECT conname INTO name FROM pg_constraint
    WHERE conrelid = 'upload'::regclass AND contype = 'c'
      AND pg_get_constraintdef(oid) LIKE '%/uploads/%';
    EXECUTE format('ALTER TABLE upload DROP CONSTRAINT %I', name);
END $$;
ALTER TABLE upload ADD CONSTRAINT upload_key_shape CHECK (
    key = 'patients/' || patient_id
        || (CASE status WHEN 'pending' THEN '/uploads/' ELSE '/files/' END) || id
);
GRANT UPDATE (key) ON upload TO phr_app;
