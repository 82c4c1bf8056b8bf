-- Placement of the share tables under Citus (see 0070). share_access and
-- share_file_ticket hold patient data without patient_id: listed as gaps in
-- tests/integration/test_citus_readiness.py until they carry it.
COMMENT ON TABLE share_request_window IS
    'citus: local (request counters per client subject for the open manifest route, no patient data)';
