-- Accounts people expect: verified email, profile (language, time zone), one-time
-- codes sent by mail, signed-in devices, and a city for the hospital directory.

-- Accounts made before verification existed are taken as verified: their owners
-- signed in with them already, and locking them out now would help nobody.
ALTER TABLE patient ADD COLUMN IF NOT EXISTS email_verified_at timestamptz;
UPDATE patient SET email_verified_at = created_at WHERE email_verified_at IS NULL;

-- The same two columns (same definition) are added by the notifications
-- migration; IF NOT EXISTS lets both run in either order.
ALTER TABLE patient ADD COLUMN IF NOT EXISTS locale text NOT NULL DEFAULT 'en';
ALTER TABLE patient ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'Asia/Shanghai';

-- One live code per account and purpose; a new one replaces the old. Only a keyed
-- hash of the code is kept. attempts counts wrong guesses; at the limit the code
-- is dead. new_email is the address an email change goes to (the code is sent
-- there, and the address changes only when it is confirmed).
CREATE TABLE account_code (
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    purpose text NOT NULL CHECK (purpose IN ('verify-email', 'password-reset', 'email-change')),
    code_digest bytea NOT NULL CHECK (length(code_digest) = 32),
    new_email text CHECK (length(new_email) <= 320),
    created_at timestamptz NOT NULL,
    expires_at timestamptz NOT NULL,
    attempts integer NOT NULL DEFAULT 0,
    used_at timestamptz,
    PRIMARY KEY (patient_id, purpose)
);

GRANT SELECT, INSERT, UPDATE, DELETE ON account_code TO phr_app;

-- A signed-in device is a refresh-token family: what the patient sees in the
-- session list. last_used_at moves on every refresh.
ALTER TABLE refresh_token_family ADD COLUMN IF NOT EXISTS device_name text
    CHECK (length(device_name) <= 200);
ALTER TABLE refresh_token_family ADD COLUMN IF NOT EXISTS client_address text
    CHECK (length(client_address) <= 64);
ALTER TABLE refresh_token_family ADD COLUMN IF NOT EXISTS last_used_at timestamptz;
UPDATE refresh_token_family SET last_used_at = created_at WHERE last_used_at IS NULL;
GRANT UPDATE (last_used_at) ON refresh_token_family TO phr_app;

-- The hospital directory: a city, and search by any part of the name (Chinese
-- or English) through a trigram-free lower() match; the table is small.
ALTER TABLE hospital ADD COLUMN IF NOT EXISTS city text CHECK (length(city) BETWEEN 1 AND 100);
CREATE INDEX IF NOT EXISTS hospital_name_idx ON hospital (name, id);
