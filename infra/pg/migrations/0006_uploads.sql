-- Files the patient uploads through presigned URLs. A row is written when the
-- URL is handed out (pending) and completed once the object has been checked
-- and registered as a record. The object itself lives in the blob store under
-- `key` = patients/<patient_id>/uploads/<id>.
CREATE TABLE upload (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    status text NOT NULL CHECK (status IN ('pending', 'completed')),
    key text NOT NULL UNIQUE CHECK (key = 'patients/' || patient_id || '/uploads/' || id),
    filename text NOT NULL CHECK (length(filename) BETWEEN 1 AND 255),
    content_type text NOT NULL,
    size bigint NOT NULL CHECK (size > 0),
    -- The record made from this file; goes with it.
    record_id uuid REFERENCES record (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    completed_at timestamptz,
    CHECK ((status = 'completed') = (record_id IS NOT NULL AND completed_at IS NOT NULL))
);

CREATE INDEX upload_patient_idx ON upload (patient_id, created_at DESC);
CREATE UNIQUE INDEX upload_record_idx ON upload (patient_id, record_id) WHERE record_id IS NOT NULL;
-- The sweeper's scan for pending uploads nobody completed.
CREATE INDEX upload_pending_expiry_idx ON upload (expires_at) WHERE status = 'pending';

GRANT SELECT, INSERT, DELETE, UPDATE (status, record_id, completed_at) ON upload TO phr_app;
