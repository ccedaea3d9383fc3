"""Fixtures of the orchestration tests: a real temporary Prefect server, and S3 settings with
distinctive fake credentials for the ``girml pull`` tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.conftest import s3_client_env
from tests.pipelines.pull_common import KEY_ID, SECRET


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A temporary Prefect server (own database, PREFECT_HOME in tmp); yields its API URL."""
    home = tmp_path_factory.mktemp("prefect-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("PREFECT_HOME", str(home))
        mp.setenv("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
        mp.setenv("DO_NOT_TRACK", "1")
        from prefect.settings import PREFECT_API_URL, PREFECT_HOME, temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        with (
            temporary_settings(updates={PREFECT_HOME: str(home)}),
            prefect_test_harness(server_startup_timeout=120),
        ):
            yield str(PREFECT_API_URL.value())


@pytest.fixture(scope="module")
def aws(s3_server: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """S3 settings (distinctive fake credentials) for this module; yields them."""
    with s3_client_env(s3_server, tmp_path_factory.mktemp("home"), KEY_ID, SECRET) as env:
        yield env
