"""The ``orchestration`` section: the Prefect flow's and deployment's settings (read by
``pipelines/``, not by the library)."""

from __future__ import annotations

from pydantic import Field

from girml.config.base import Frozen


class OrchestrationConfig(Frozen):
    """Prefect flow and deployment settings (read by ``pipelines/``, not by the library)."""

    cron: str = Field(default="0 3 * * 1", min_length=9, description="deployment schedule")
    timezone: str = "UTC"
    deployment: str = "scheduled"
    push: bool = Field(default=False, description="dvc push (and report upload) at the end")
    retries: int = Field(default=2, ge=0, description="retries of I/O-bound stages")
    retry_delay_s: float = Field(default=10.0, ge=0)
    io_stages: list[str] = Field(default_factory=lambda: ["collect", "testset"])
