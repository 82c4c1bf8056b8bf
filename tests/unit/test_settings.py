"""Settings are read once from the environment; a bad value stops the start with
a message that names it."""

from __future__ import annotations

from pathlib import Path

import pytest

from infra.settings import SettingsError, load_settings


def test_defaults_use_the_embedded_database_and_local_files(tmp_path):
    settings = load_settings({"PHR_DATA_DIR": str(tmp_path)})
    assert settings.uses_embedded_database and settings.s3 is None
    assert settings.data_dir == tmp_path.resolve()
    assert settings.access_token_ttl_seconds <= 900
    assert settings.job_retry_base_seconds == 5.0


def test_external_servers_are_switched_on_by_their_settings(tmp_path):
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://phr@db.internal/phr",
            "PHR_DATA_DIR": str(tmp_path),
            "S3_ENDPOINT_URL": "https://s3.example",
            "S3_BUCKET": "phr-files",
            "S3_REGION": "eu-west-1",
        }
    )
    assert not settings.uses_embedded_database
    assert (
        settings.s3 is not None
        and settings.s3.bucket == "phr-files"
        and settings.s3.region == "eu-west-1"
    )


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"DATABASE_URL": "mysql://x"}, "DATABASE_URL"),
        ({"PHR_PUBLIC_URL": "ftp://x"}, "PHR_PUBLIC_URL"),
        ({"PHR_ACCESS_TOKEN_TTL": "3600"}, "PHR_ACCESS_TOKEN_TTL"),
        ({"PHR_ACCESS_TOKEN_TTL": "soon"}, "PHR_ACCESS_TOKEN_TTL"),
        ({"PHR_MAX_BODY_BYTES": "-1"}, "PHR_MAX_BODY_BYTES"),
        ({"S3_ENDPOINT_URL": "https://s3.example"}, "S3_BUCKET"),
        ({"PHR_LOG_LEVEL": "LOUD"}, "PHR_LOG_LEVEL"),
        ({"PHR_JOB_RETRY_BASE_SECONDS": "0"}, "PHR_JOB_RETRY_BASE_SECONDS"),
        ({"PHR_JOB_RETRY_BASE_SECONDS": "nan"}, "PHR_JOB_RETRY_BASE_SECONDS"),
        ({"PHR_JOB_RETRY_BASE_SECONDS": "soon"}, "PHR_JOB_RETRY_BASE_SECONDS"),
    ],
)
def test_a_bad_value_is_named(env, named, tmp_path):
    with pytest.raises(SettingsError, match=named):
        load_settings({"PHR_DATA_DIR": str(tmp_path), **env})


def test_a_data_dir_that_is_a_file_is_refused(tmp_path: Path):
    file = tmp_path / "not-a-folder"
    file.write_text("x")
    with pytest.raises(SettingsError, match="PHR_DATA_DIR"):
        load_settings({"PHR_DATA_DIR": str(file)})
