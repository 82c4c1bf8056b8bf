-- One table for every throttle (sign-in, registration, refresh, code checks): an
-- attempt is a row under a (scope, subject) key; subjects are hashes, never an
-- email or an address in clear. Replaces login_attempt (sign-in only, one lockout
-- per account) and link_code_failure_window (read-then-increment, racy).
CREATE TABLE throttle_attempt (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    scope text NOT NULL CHECK (scope ~ '^[a-z][a-z0-9.-]{0,63}$'),
    subject text NOT NULL CHECK (length(subject) <= 128),
    attempted_at timestamptz NOT NULL
);

CREATE INDEX throttle_attempt_key_idx ON throttle_attempt (scope, subject, attempted_at DESC);
CREATE INDEX throttle_attempt_at_idx ON throttle_attempt (attempted_at);

GRANT SELECT, INSERT, DELETE ON throttle_attempt TO phr_app;

DROP TABLE login_attempt;
DROP TABLE link_code_failure_window;
