"""`Duration`: a timedelta that YAML authors write as `90s`, `5m`, `1h30m` or `2d`.

ISO 8601 (`PT5M`) and plain seconds keep working, because anything else goes on to pydantic.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator

_UNITS = {"d": 86400.0, "h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
_SHORT = re.compile(r"^(?:\d+(?:\.\d+)?(?:ms|d|h|m|s))+$")
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|d|h|m|s)")


def _parse(value: Any) -> Any:
    if isinstance(value, str) and _SHORT.match(value.strip()):
        seconds = sum(float(n) * _UNITS[unit] for n, unit in _PART.findall(value.strip()))
        return timedelta(seconds=seconds)
    return value


def _positive(value: timedelta) -> timedelta:
    if value <= timedelta(0):
        raise ValueError("must be longer than zero")
    return value


Duration = Annotated[timedelta, BeforeValidator(_parse), AfterValidator(_positive)]
