-- Placement of the background-job tables under Citus (see 0070).
COMMENT ON TABLE job IS
    'citus: local (the job queue, on the coordinator: workers claim rows with SKIP LOCKED; a payload names its work by ids, the data stays in the patient tables)';
COMMENT ON TABLE job_schedule IS
    'citus: local (one row per periodic job name)';
