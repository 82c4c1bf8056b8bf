-- Where the erasure tables would live under Citus (see the README's "Past one
-- machine" and tests/integration/test_citus_readiness.py).
COMMENT ON TABLE erased_patient_ref IS
    'citus: distributed by hospital_id (a tombstone is looked up by the pushing hospital and a digest of its MRN; the erased patient no longer exists)';
COMMENT ON TABLE erased_file_prefix IS
    'citus: local (the sweeper''s list of object-storage prefixes to empty again; no patient data beyond a random id)';
