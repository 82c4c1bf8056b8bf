-- How each table would be placed if PostgreSQL were distributed with Citus
-- (README, "Past one machine"); tests/integration/test_citus_readiness.py reads
-- these comments. A table with a patient_id column is distributed by it and
-- needs no comment; every other table says what it is and why.
COMMENT ON TABLE patient IS
    'citus: distributed by id (the patient id itself; co-located with every patient_id table)';
COMMENT ON TABLE hospital IS
    'citus: reference (a small directory every shard joins against)';
COMMENT ON TABLE hospital_secret IS
    'citus: reference (webhook secrets, read with the hospital)';
COMMENT ON TABLE signing_key IS
    'citus: reference (access-token keys, read by every API node)';
COMMENT ON TABLE schema_migration IS
    'citus: local (migration bookkeeping on the coordinator)';
COMMENT ON TABLE throttle_attempt IS
    'citus: local (throttling counters keyed by hashed account or address, no health data; short-lived rows)';
COMMENT ON TABLE webhook_rate_window IS
    'citus: local (per-hospital rate counters, no patient data)';
COMMENT ON TABLE webhook_delivery IS
    'citus: distributed by hospital_id (delivery ids are the hospital''s; the stored reply holds counts, no health data)';
COMMENT ON TABLE webhook_parked_push IS
    'citus: distributed by hospital_id (a push for a patient not linked yet: no patient_id exists until the link completes, then it moves into the patient''s shard)';
