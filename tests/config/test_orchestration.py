"""The ``orchestration`` section (girml/config/orchestration.py); how the flow uses it:
tests/pipelines/test_flows.py."""

from __future__ import annotations

import pytest

from girml.config import ConfigError, OrchestrationConfig, parse_section


def test_defaults_schedule_weekly_and_retry_only_the_downloads() -> None:
    cfg = OrchestrationConfig()
    assert cfg.cron == "0 3 * * 1" and cfg.timezone == "UTC" and not cfg.push
    assert cfg.io_stages == ["collect", "testset"] and cfg.retries == 2


def test_a_cron_too_short_to_be_one_and_negative_retries_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"orchestration\.cron: .*at least 9 characters"):
        parse_section({"cron": "* * *"}, "orchestration", OrchestrationConfig)
    with pytest.raises(ConfigError, match=r"orchestration\.retries: .*got -1"):
        parse_section({"retries": -1}, "orchestration", OrchestrationConfig)
    with pytest.raises(ConfigError, match=r"orchestration\.schedule: Extra inputs"):
        parse_section({"schedule": "daily"}, "orchestration", OrchestrationConfig)
