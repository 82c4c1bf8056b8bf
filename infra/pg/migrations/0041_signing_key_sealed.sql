-- Signing keys' private halves are sealed (AES-256-GCM) with the secrets key kept
-- outside the database, as hospital secrets are: a dump of this table no longer
-- mints tokens. Keys stored in clear until now are retired here (their public
-- halves keep verifying the tokens they signed until those expire) and their
-- private halves are dropped; the first process to need a key makes a sealed one.
ALTER TABLE signing_key ADD COLUMN private_key_sealed bytea;
UPDATE signing_key SET retired_at = coalesce(retired_at, now());
ALTER TABLE signing_key DROP COLUMN private_key_pem;
-- A revoked key verifies nothing from the moment it is revoked (`phr keys revoke`).
ALTER TABLE signing_key ADD COLUMN revoked_at timestamptz;
ALTER TABLE signing_key ADD CONSTRAINT signing_key_current_is_sealed
    CHECK (retired_at IS NOT NULL OR private_key_sealed IS NOT NULL);

-- Refresh-token families end at an absolute time, however often they are rotated.
ALTER TABLE refresh_token_family ADD COLUMN expires_at timestamptz;
UPDATE refresh_token_family SET expires_at = created_at + interval '30 days';
ALTER TABLE refresh_token_family ALTER COLUMN expires_at SET NOT NULL;

GRANT UPDATE (revoked_at) ON signing_key TO phr_app;
