-- A share's recipient opening the imaging viewer the shared bundle links to is
-- a look at the share the patient sees beside manifest and file fetches
-- (GET /v1/shares/{id}/accesses). The table's Citus placement is unchanged
-- (0072: listed there with its gap, share_id without patient_id).
ALTER TABLE share_access DROP CONSTRAINT share_access_kind_check;
ALTER TABLE share_access ADD CONSTRAINT share_access_kind_check
    CHECK (kind IN ('manifest', 'file', 'viewer'));
