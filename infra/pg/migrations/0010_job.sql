-- Background jobs. A worker claims due rows with FOR UPDATE SKIP LOCKED and holds
-- a lease (locked_until) instead of a lock: a process that dies mid-job leaves the
-- lease to expire and the job runs again. Finished jobs stay (done_at) so that a
-- dedupe key keeps refusing its occurrence; a periodic job prunes old ones.
CREATE TABLE job (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind text NOT NULL CHECK (length(kind) BETWEEN 1 AND 100),
    payload jsonb NOT NULL,
    run_at timestamptz NOT NULL DEFAULT now(),
    attempts integer NOT NULL DEFAULT 0,
    max_attempts integer NOT NULL DEFAULT 10 CHECK (max_attempts > 0),
    locked_until timestamptz,
    locked_by text,
    last_error text,
    dedupe_key text UNIQUE,
    created_at timestamptz NOT NULL DEFAULT now(),
    done_at timestamptz,
    failed_at timestamptz
);
-- Only live jobs are scanned when claiming.
CREATE INDEX job_due_idx ON job (run_at, id) WHERE done_at IS NULL AND failed_at IS NULL;
CREATE INDEX job_finished_idx ON job (coalesce(done_at, failed_at))
    WHERE done_at IS NOT NULL OR failed_at IS NOT NULL;

-- Periodic jobs: one row per name. A process runs an occurrence only after moving
-- next_run_at forward (one winner per occurrence) while holding the name's
-- session advisory lock (no overlap with a run still going elsewhere).
CREATE TABLE job_schedule (
    name text PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 100),
    next_run_at timestamptz NOT NULL,
    last_started_at timestamptz,
    last_finished_at timestamptz,
    last_run_by text,
    last_error text
);

GRANT SELECT, INSERT, UPDATE, DELETE ON job TO phr_app;
GRANT SELECT, INSERT, UPDATE ON job_schedule TO phr_app;
