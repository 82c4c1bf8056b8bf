-- Notifications: the inbox, push registrations, the delivery outbox, preferences.

-- The profile's language and time zone (the accounts change adds the same two
-- columns; IF NOT EXISTS lets both migrations run in either order).
ALTER TABLE patient ADD COLUMN IF NOT EXISTS locale text NOT NULL DEFAULT 'en';
ALTER TABLE patient ADD COLUMN IF NOT EXISTS time_zone text NOT NULL DEFAULT 'Asia/Shanghai';

-- One row per occurrence. `dedupe_key` names the occurrence (a delivery, a
-- medication's run-out day, a share's first opening): a scan that runs twice or
-- two workers racing insert it once. `params` are what the text is made of,
-- never clinical values. Hidden from the inbox until `visible_at` (abnormal
-- results the patient asked to hear about after a delay).
CREATE TABLE notification (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (length(kind) <= 64),
    dedupe_key text NOT NULL CHECK (length(dedupe_key) <= 400),
    params jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    visible_at timestamptz NOT NULL,
    read_at timestamptz,
    UNIQUE (patient_id, dedupe_key)
);

-- The inbox and the unread count both read through this one index (a patient's
-- notifications are few); every index more is a cost on each row of a fan-out.
CREATE INDEX notification_inbox_idx ON notification (patient_id, visible_at DESC, id DESC);

GRANT SELECT, INSERT, UPDATE (read_at) ON notification TO phr_app;

-- Push registrations: a browser's Web Push subscription, or an APNs / FCM token.
-- `address` is the endpoint URL or the token: one registration per address.
CREATE TABLE push_device (
    id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('webpush', 'apns', 'fcm')),
    address text NOT NULL CHECK (length(address) <= 2048),
    p256dh text CHECK (length(p256dh) <= 200),
    auth text CHECK (length(auth) <= 100),
    name text CHECK (length(name) <= 200),
    created_at timestamptz NOT NULL,
    UNIQUE (patient_id, kind, address)
);

GRANT SELECT, INSERT, UPDATE (name, p256dh, auth), DELETE ON push_device TO phr_app;

-- The transactional outbox: written in the transaction that made the
-- notification, sent by the worker at least once. A claim is a lease
-- (`claimed_until`): a worker that dies mid-send leaves the row to be claimed
-- again after it lapses; the receiver deduplicates on the notification id.
-- One foreign key only (the patient's, for erasure): a fan-out writes thousands
-- of rows at once and each key is a lookup per row. Rows are written only with
-- the notification they belong to (which goes only with its patient), and a
-- device removed later is found missing at claim time and its deliveries closed.
CREATE TABLE notification_delivery (
    id uuid PRIMARY KEY,
    notification_id uuid NOT NULL,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    device_id uuid,
    kind text NOT NULL,
    status text NOT NULL DEFAULT 'pending'
        CHECK (status IN ('pending', 'delivered', 'dead', 'gone')),
    attempts integer NOT NULL DEFAULT 0,
    due_at timestamptz NOT NULL,
    claimed_until timestamptz,
    last_error text,
    created_at timestamptz NOT NULL,
    finished_at timestamptz,
    UNIQUE (notification_id, device_id)
);

CREATE INDEX notification_delivery_due_idx ON notification_delivery (due_at)
    WHERE status = 'pending';
CREATE INDEX notification_delivery_dead_idx ON notification_delivery (finished_at)
    WHERE status = 'dead';

GRANT SELECT, INSERT, UPDATE ON notification_delivery TO phr_app;

-- Preferences: per kind on/off, quiet hours, refill lead days, abnormal delay.
CREATE TABLE notification_preference (
    patient_id uuid PRIMARY KEY REFERENCES patient (id) ON DELETE CASCADE,
    preferences jsonb NOT NULL,
    updated_at timestamptz NOT NULL
);

GRANT SELECT, INSERT, UPDATE ON notification_preference TO phr_app;

-- Devices a patient has signed in from (a digest of what identifies them), so a
-- sign-in from one not seen before can be told.
CREATE TABLE sign_in_device (
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    fingerprint bytea NOT NULL CHECK (length(fingerprint) = 32),
    first_seen_at timestamptz NOT NULL,
    PRIMARY KEY (patient_id, fingerprint)
);

GRANT SELECT, INSERT ON sign_in_device TO phr_app;

-- The refill scan's question, "who has an active prescription?", answered from
-- an index instead of a pass over every record.
CREATE INDEX record_active_prescription_idx ON record (patient_id)
    WHERE resource_type = 'MedicationRequest' AND status = 'active';
