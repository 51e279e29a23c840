"""OTA jobs as they arrive from the cloud (``cloud/in/ota/jobs``, raw JSON bytes)."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_agent.ota.errors import Code, OtaError
from edge_agent.ota.versions import VERSION_PATTERN


class Job(BaseModel):
    """Install ``target`` at ``version``: the signed target ``TARGET-VERSION.bundle``."""

    model_config = ConfigDict(extra="ignore")

    id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
    target: str = Field(default="edge-agent", pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
    version: str = Field(pattern=VERSION_PATTERN)


def parse_job(payload: Any) -> Job:
    """Validate a job payload (bytes, str or dict); OtaError(BAD_JOB) says what is wrong."""
    try:
        if isinstance(payload, bytes | bytearray):
            payload = payload.decode("utf-8")
        data = json.loads(payload) if isinstance(payload, str) else payload
        return Job.model_validate(data)
    except ValidationError as error:
        first = error.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "job"
        raise OtaError(Code.BAD_JOB, f"job {where}: {first['msg']}") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise OtaError(Code.BAD_JOB, f"job is not JSON: {error}") from None
