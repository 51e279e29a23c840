"""OTA jobs as they arrive from the cloud (``cloud/in/ota/jobs``, raw JSON bytes)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.versions import VERSION_PATTERN
from edge_agent.untrusted import UntrustedDataError, load_json_bounded

MAX_JOB_BYTES = 16 * 1024
MAX_JOB_DEPTH = 8

BUNDLE_TARGET = "edge-agent"
CONFIG_TARGET = "agent-config"


class Job(BaseModel):
    """Install ``target`` at ``version``.

    ``kind`` ``bundle`` (the default): the signed target ``TARGET-VERSION.bundle``, installed
    through the A/B or RAUC pipeline. ``config``: the signed config target
    ``TARGET-VERSION.config.json`` (``target`` defaults to ``agent-config``), applied by the
    supervisor once the vehicle is parked (docs/security.md).
    """

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    kind: Literal["bundle", "config"] = "bundle"
    target: str = Field(default="", pattern=r"^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})?$")
    version: str = Field(pattern=VERSION_PATTERN)

    @model_validator(mode="after")
    def _default_target(self) -> Job:
        if not self.target:
            self.target = CONFIG_TARGET if self.kind == "config" else BUNDLE_TARGET
        return self


def parse_job(payload: Any) -> Job:
    """Validate a job payload (bytes, str or dict); OtaError(BAD_JOB) says what is wrong."""
    try:
        data = (
            load_json_bounded(payload, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH, what="job")
            if isinstance(payload, bytes | bytearray | str)
            else payload
        )
        return Job.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "job"
        raise OtaError(Code.BAD_JOB, f"job {where}: {first['msg']}") from None
    except UntrustedDataError as error:
        raise OtaError(Code.BAD_JOB, str(error)) from None


def job_id_of(payload: Any) -> str:
    """The id of a job that may not parse, for naming it in its refusal ("" when unreadable)."""
    try:
        data = (
            load_json_bounded(payload, max_bytes=MAX_JOB_BYTES, max_depth=MAX_JOB_DEPTH)
            if isinstance(payload, bytes | bytearray | str)
            else payload
        )
    except UntrustedDataError:
        return ""
    job_id = data.get("id") if isinstance(data, dict) else None
    return job_id if isinstance(job_id, str) and 0 < len(job_id) <= 128 else ""
