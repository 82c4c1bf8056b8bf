-- Consents: never deleted; revoking sets revoked_at (the archive).
CREATE TABLE consent (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    kind text NOT NULL CHECK (kind IN ('data-source', 'share')),
    grantee_type text NOT NULL CHECK (grantee_type IN ('hospital', 'share')),
    grantee_id text NOT NULL,
    resource_types text[] NOT NULL DEFAULT '{}',
    period_start timestamptz NOT NULL,
    period_end timestamptz,
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consent_patient_idx ON consent (patient_id, created_at DESC);
CREATE INDEX consent_grantee_idx ON consent (patient_id, grantee_type, grantee_id);

-- Records: FHIR resources as received (JSONB) plus the columns queries need.
-- One row per (patient, source, type, source id); older versions in record_version.
CREATE TABLE record (
    id uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    source_kind text NOT NULL CHECK (source_kind IN ('hospital', 'self')),
    source_key text NOT NULL,
    hospital_id uuid,
    resource_type text NOT NULL,
    source_resource_id text NOT NULL,
    is_supporting boolean NOT NULL,
    category text,
    code_system text,
    code text,
    display text,
    effective_at timestamptz,
    status text,
    value text,
    unit text,
    sort_at timestamptz NOT NULL,
    version integer NOT NULL,
    source_version text,
    source_updated_at timestamptz,
    content_hash bytea NOT NULL,
    resource jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    CHECK ((source_kind = 'hospital') = (hospital_id IS NOT NULL)),
    UNIQUE (patient_id, source_key, resource_type, source_resource_id)
);
CREATE INDEX record_timeline_idx ON record (patient_id, sort_at DESC, id DESC) WHERE NOT is_supporting;
CREATE INDEX record_type_idx ON record (patient_id, resource_type, sort_at DESC, id DESC) WHERE NOT is_supporting;

CREATE TABLE record_version (
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    record_id uuid NOT NULL REFERENCES record (id) ON DELETE CASCADE,
    version integer NOT NULL,
    source_version text,
    source_updated_at timestamptz,
    content_hash bytea NOT NULL,
    resource jsonb NOT NULL,
    received_at timestamptz NOT NULL,
    superseded_at timestamptz NOT NULL,
    PRIMARY KEY (record_id, version)
);
CREATE INDEX record_version_patient_idx ON record_version (patient_id, record_id);

GRANT SELECT, INSERT, UPDATE ON consent TO phr_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON record, record_version TO phr_app;
