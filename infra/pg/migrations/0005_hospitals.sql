-- Hospitals, their webhook secrets, patient links, and webhook bookkeeping
-- (deduplication, parked pushes, rate-limit and wrong-code counters).

CREATE TABLE hospital (
    id uuid PRIMARY KEY,
    name text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    created_at timestamptz NOT NULL
);

-- Secrets are sealed (AES-256-GCM) with a key kept outside the database
-- (PHR_SECRETS_KEY or <data dir>/keys/secrets.key): a dump alone reveals none.
-- retires_at NULL = the current secret; a rotation sets it on the old ones to
-- now + grace, and they keep verifying until then.
CREATE TABLE hospital_secret (
    id uuid PRIMARY KEY,
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    sealed bytea NOT NULL,
    created_at timestamptz NOT NULL,
    retires_at timestamptz
);
CREATE INDEX hospital_secret_hospital_idx ON hospital_secret (hospital_id);

-- A patient's link to a hospital. The code is kept as a keyed HMAC for look-ups
-- and, while the link is pending, sealed (to show it again as a QR); the sealed
-- copy is erased when the link completes. Status comes from the consent row
-- (revoked) and linked_at / expires_at.
CREATE TABLE hospital_link (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    hospital_id uuid NOT NULL REFERENCES hospital (id),
    consent_id uuid NOT NULL REFERENCES consent (id),
    code_digest bytea NOT NULL CHECK (length(code_digest) = 32),
    code_sealed bytea,
    expires_at timestamptz NOT NULL,
    patient_ref text CHECK (length(patient_ref) BETWEEN 1 AND 128),
    linked_at timestamptz,
    created_at timestamptz NOT NULL,
    CHECK ((patient_ref IS NULL) = (linked_at IS NULL))
);
CREATE INDEX hospital_link_patient_idx ON hospital_link (patient_id, created_at DESC);
-- Two pending codes of one hospital never collide (the creator retries).
CREATE UNIQUE INDEX hospital_link_pending_code_key ON hospital_link (hospital_id, code_digest)
    WHERE linked_at IS NULL;
CREATE INDEX hospital_link_ref_idx ON hospital_link (hospital_id, patient_ref, linked_at DESC)
    WHERE linked_at IS NOT NULL;

-- Every delivery id a hospital used, with the digest of its body and the reply
-- given, so a redelivery gets the same answer and stores nothing twice. Kept at
-- least 7 days (far beyond the 5-minute signature tolerance); nothing deletes
-- them yet, received_at is indexed for the pruning job.
CREATE TABLE webhook_delivery (
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    delivery_id text NOT NULL CHECK (length(delivery_id) BETWEEN 1 AND 256),
    body_digest bytea NOT NULL,
    received_at timestamptz NOT NULL,
    reply_status integer,
    reply_media_type text,
    reply_body bytea,
    PRIMARY KEY (hospital_id, delivery_id)
);
CREATE INDEX webhook_delivery_received_idx ON webhook_delivery (received_at);

-- Pushes for an MRN not linked yet: validated, then kept here until the link
-- completes. No patient_id: the patient is not known until then.
CREATE TABLE webhook_parked_push (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    patient_ref text NOT NULL,
    delivery_id text NOT NULL,
    bundle jsonb NOT NULL,
    received_at timestamptz NOT NULL
);
CREATE INDEX webhook_parked_push_ref_idx ON webhook_parked_push (hospital_id, patient_ref, id);

-- Fixed-window counters: deliveries admitted, and wrong link codes.
CREATE TABLE webhook_rate_window (
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    deliveries integer NOT NULL,
    PRIMARY KEY (hospital_id, window_start)
);

CREATE TABLE link_code_failure_window (
    hospital_id uuid NOT NULL REFERENCES hospital (id) ON DELETE CASCADE,
    window_start timestamptz NOT NULL,
    failures integer NOT NULL,
    PRIMARY KEY (hospital_id, window_start)
);

GRANT SELECT, INSERT ON hospital TO phr_app;
GRANT SELECT, INSERT, UPDATE (retires_at) ON hospital_secret TO phr_app;
GRANT SELECT, INSERT, UPDATE (patient_ref, linked_at, code_sealed) ON hospital_link TO phr_app;
GRANT SELECT, INSERT, UPDATE (reply_status, reply_media_type, reply_body), DELETE ON webhook_delivery TO phr_app;
GRANT SELECT, INSERT, DELETE ON webhook_parked_push TO phr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON webhook_rate_window, link_code_failure_window TO phr_app;
