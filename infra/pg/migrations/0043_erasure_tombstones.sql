-- What erasure leaves behind so that nothing comes back.
-- A hospital's reference for an erased patient (its MRN), as a keyed digest (the
-- key lives outside the database): later pushes for it are refused (410) and never
-- stored or parked. A later link with a fresh code from the patient lifts it.
CREATE TABLE erased_patient_ref (
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    ref_digest bytea NOT NULL CHECK (length(ref_digest) = 32),
    erased_at timestamptz NOT NULL,
    PRIMARY KEY (hospital_id, ref_digest)
);

-- Object-storage prefixes of erased accounts, to be emptied once more after every
-- upload URL issued before the erasure has expired (S3 URLs cannot be revoked).
-- The row goes when that sweep is done.
CREATE TABLE erased_file_prefix (
    prefix text PRIMARY KEY CHECK (prefix ~ '^patients/[0-9a-f-]{36}/$'),
    sweep_after timestamptz NOT NULL
);

CREATE INDEX erased_file_prefix_due_idx ON erased_file_prefix (sweep_after);

GRANT SELECT, INSERT, DELETE ON erased_patient_ref, erased_file_prefix TO phr_app;
GRANT UPDATE (erased_at) ON erased_patient_ref TO phr_app;
GRANT UPDATE (sweep_after) ON erased_file_prefix TO phr_app;
