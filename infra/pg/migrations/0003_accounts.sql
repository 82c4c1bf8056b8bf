-- Patient accounts, access-token signing keys, refresh tokens and login throttling.

-- The patient: every table with patient data references this row (ON DELETE CASCADE).
-- The email keeps the local part as typed (domain lower-cased); uniqueness and
-- look-ups are case-insensitive.
CREATE TABLE patient (
    id uuid PRIMARY KEY,
    email text NOT NULL CHECK (length(email) <= 320),
    display_name text CHECK (length(display_name) <= 200),
    password_hash text NOT NULL,
    created_at timestamptz NOT NULL,
    password_changed_at timestamptz NOT NULL
);

CREATE UNIQUE INDEX patient_email_key ON patient (lower(email));

GRANT SELECT, INSERT, UPDATE ON patient TO phr_app;

-- Ed25519 keys that sign access tokens. Exactly one is current (retired_at IS NULL);
-- retired ones still verify the tokens they signed until those expire. The private
-- key is stored as PKCS#8 PEM: whoever can read this table can mint tokens.
CREATE TABLE signing_key (
    kid text PRIMARY KEY,
    algorithm text NOT NULL CHECK (algorithm = 'EdDSA'),
    private_key_pem text NOT NULL,
    public_key bytea NOT NULL,
    created_at timestamptz NOT NULL,
    retired_at timestamptz
);

-- Two processes racing to create the first key (or two rotations) cannot both
-- leave a current key behind.
CREATE UNIQUE INDEX signing_key_one_current ON signing_key ((retired_at IS NULL))
    WHERE retired_at IS NULL;

GRANT SELECT, INSERT, UPDATE (retired_at) ON signing_key TO phr_app;

-- Refresh tokens (RFC 9700 rotation): every login starts a family; each refresh
-- spends one token and issues the next in the same family. Presenting a spent
-- token revokes the family. Only the SHA-256 of a token is stored.
CREATE TABLE refresh_token_family (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    created_at timestamptz NOT NULL,
    revoked_at timestamptz,
    revoked_reason text
);

CREATE INDEX refresh_token_family_patient_idx ON refresh_token_family (patient_id);

CREATE TABLE refresh_token (
    token_hash bytea PRIMARY KEY CHECK (length(token_hash) = 32),
    family_id uuid NOT NULL REFERENCES refresh_token_family (id) ON DELETE CASCADE,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    issued_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    spent_at timestamptz
);

CREATE INDEX refresh_token_family_idx ON refresh_token (family_id);
CREATE INDEX refresh_token_patient_idx ON refresh_token (patient_id);

GRANT SELECT, INSERT, UPDATE (revoked_at, revoked_reason) ON refresh_token_family TO phr_app;
GRANT SELECT, INSERT, UPDATE (spent_at) ON refresh_token TO phr_app;

-- Login attempts, per account (SHA-256 of the normalised email, never the email)
-- and per client address. An attempt is written before the password is checked
-- and deleted when it succeeds, so what remains in the window are failures and
-- attempts still in flight: parallel guesses count too, across every API process.
CREATE TABLE login_attempt (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL CHECK (scope IN ('account', 'address')),
    subject text NOT NULL,
    attempted_at timestamptz NOT NULL
);

CREATE INDEX login_attempt_subject_idx ON login_attempt (scope, subject, attempted_at DESC);
CREATE INDEX login_attempt_at_idx ON login_attempt (attempted_at);

GRANT SELECT, INSERT, DELETE ON login_attempt TO phr_app;
