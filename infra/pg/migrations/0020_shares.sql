-- SMART Health Links the patient made. The manifest token (the random part of the
-- link's url) is kept only as a SHA-256 digest: a dump yields no working link.
-- A snapshot share keeps only ciphertext (in the blob store, `ciphertext_key`) and
-- forgets its key; the viewer URL (which holds the key) is kept sealed only for
-- a short while after creation (`link_held_until`), so the app can fetch the QR,
-- and erased after that. A long-term ('L') share keeps its key sealed for good,
-- since it is re-encrypted on every request.
CREATE TABLE share (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    consent_id uuid NOT NULL REFERENCES consent (id) ON DELETE CASCADE,
    token_digest bytea NOT NULL UNIQUE CHECK (length(token_digest) = 32),
    label text CHECK (length(label) <= 80),
    flag text NOT NULL CHECK (flag IN ('', 'L', 'P', 'LP')),
    scope jsonb NOT NULL,
    passcode_hash text,
    attempts_left integer NOT NULL CHECK (attempts_left >= 0),
    long_term boolean NOT NULL,
    key_sealed bytea,
    link_sealed bytea,
    link_held_until timestamptz,
    ciphertext_key text,
    ciphertext_bytes bigint,
    record_ids uuid[] NOT NULL,
    expires_at timestamptz NOT NULL,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    disabled_at timestamptz,
    CHECK ((flag LIKE '%P%') = (passcode_hash IS NOT NULL)),
    CHECK (long_term = (flag LIKE 'L%')),
    CHECK (NOT long_term OR key_sealed IS NOT NULL OR revoked_at IS NOT NULL),
    CHECK (long_term OR key_sealed IS NULL),
    CHECK (long_term OR ciphertext_key IS NOT NULL)
);
CREATE INDEX share_patient_idx ON share (patient_id, created_at DESC, id DESC);
CREATE INDEX share_link_held_idx ON share (link_held_until) WHERE link_sealed IS NOT NULL;

-- A `location` handed out in a manifest: one file, one use, at most an hour.
CREATE TABLE share_file_ticket (
    token_digest bytea PRIMARY KEY CHECK (length(token_digest) = 32),
    share_id uuid NOT NULL REFERENCES share (id) ON DELETE CASCADE,
    recipient text NOT NULL,
    expires_at timestamptz NOT NULL,
    used_at timestamptz
);
CREATE INDEX share_file_ticket_share_idx ON share_file_ticket (share_id);
CREATE INDEX share_file_ticket_expiry_idx ON share_file_ticket (expires_at);

-- Who opened a share: shown to the patient (GET /v1/shares/{id}/accesses).
CREATE TABLE share_access (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    share_id uuid NOT NULL REFERENCES share (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('manifest', 'file')),
    recipient text NOT NULL,
    client_address text,
    user_agent text,
    files integer NOT NULL,
    accessed_at timestamptz NOT NULL
);
CREATE INDEX share_access_share_idx ON share_access (share_id, id DESC);

-- Fixed-window counters for manifest requests, per link and per client address.
CREATE TABLE share_request_window (
    subject text NOT NULL,
    window_start timestamptz NOT NULL,
    hits integer NOT NULL,
    PRIMARY KEY (subject, window_start)
);
CREATE INDEX share_request_window_start_idx ON share_request_window (window_start);

GRANT SELECT, INSERT, UPDATE ON share TO phr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON share_file_ticket TO phr_app;
GRANT SELECT, INSERT ON share_access TO phr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON share_request_window TO phr_app;
