-- Imaging the patient stores with phr: instances grouped by StudyInstanceUID into
-- studies and series, whatever PatientID each CD carries (kept as aliases). Each
-- instance's file is one object under patients/<patient_id>/dicom/; its DICOM JSON
-- header is kept for QIDO-RS and WADO-RS metadata.
CREATE TABLE imaging_study (
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    study_uid text NOT NULL CHECK (study_uid ~ '^[0-9]+(\.[0-9]+)*$' AND length(study_uid) <= 64),
    -- The ImagingStudy record on the timeline, rebuilt as instances arrive.
    record_id uuid REFERENCES record (id) ON DELETE SET NULL,
    patient_aliases text[] NOT NULL DEFAULT '{}',
    -- DICOM JSON of the first instance's study-level attributes.
    attributes jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL,
    PRIMARY KEY (patient_id, study_uid)
);

CREATE TABLE imaging_series (
    patient_id uuid NOT NULL,
    study_uid text NOT NULL,
    series_uid text NOT NULL CHECK (series_uid ~ '^[0-9]+(\.[0-9]+)*$' AND length(series_uid) <= 64),
    modality text,
    body_part text,
    description text,
    number integer,
    attributes jsonb NOT NULL,
    preview_key text,
    preview_width integer,
    preview_height integer,
    PRIMARY KEY (patient_id, series_uid),
    FOREIGN KEY (patient_id, study_uid) REFERENCES imaging_study (patient_id, study_uid)
        ON DELETE CASCADE
);
CREATE INDEX imaging_series_study_idx ON imaging_series (patient_id, study_uid);

CREATE TABLE imaging_instance (
    patient_id uuid NOT NULL,
    series_uid text NOT NULL,
    instance_uid text NOT NULL CHECK (instance_uid ~ '^[0-9]+(\.[0-9]+)*$' AND length(instance_uid) <= 64),
    sop_class_uid text NOT NULL,
    number integer,
    transfer_syntax text NOT NULL,
    frames integer NOT NULL CHECK (frames >= 0),
    rows integer,
    columns integer,
    key text NOT NULL UNIQUE,
    size bigint NOT NULL CHECK (size > 0),
    metadata jsonb NOT NULL,
    created_at timestamptz NOT NULL,
    PRIMARY KEY (patient_id, instance_uid),
    FOREIGN KEY (patient_id, series_uid) REFERENCES imaging_series (patient_id, series_uid)
        ON DELETE CASCADE
);
CREATE INDEX imaging_instance_series_idx ON imaging_instance (patient_id, series_uid, number);

-- A CD (zip) being imported: its upload row is consumed when the archive is
-- accepted, and this row tells the patient how the import went.
CREATE TABLE imaging_import (
    upload_id uuid PRIMARY KEY,
    patient_id uuid NOT NULL REFERENCES patient (id) ON DELETE CASCADE,
    key text NOT NULL,
    filename text NOT NULL,
    status text NOT NULL CHECK (status IN ('processing', 'done', 'failed')),
    instances integer NOT NULL DEFAULT 0,
    duplicates integer NOT NULL DEFAULT 0,
    ignored integer NOT NULL DEFAULT 0,
    study_uids text[] NOT NULL DEFAULT '{}',
    reasons jsonb NOT NULL DEFAULT '[]',
    created_at timestamptz NOT NULL,
    updated_at timestamptz NOT NULL
);
CREATE INDEX imaging_import_patient_idx ON imaging_import (patient_id, created_at DESC);

GRANT SELECT, INSERT, UPDATE, DELETE ON imaging_study, imaging_series, imaging_instance,
    imaging_import TO phr_app;
