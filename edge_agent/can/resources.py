"""Resolving data files named in configs, including files shipped inside installed packages."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

PACKAGE_PREFIX = "package:"


def resolve_data_path(value: str | Path) -> Path:
    """Turn a config value into a file path.

    ``package:vendor.vehicle_data/dbc/powertrain.dbc`` names a file inside an installed
    package (so configs need not know where Python put it); anything else is a plain path.
    """
    text = str(value)
    if not text.startswith(PACKAGE_PREFIX):
        return Path(text)
    package, _, inner = text[len(PACKAGE_PREFIX) :].partition("/")
    if not package or not inner:
        raise ValueError(f"{text!r}: use 'package:PACKAGE/path/inside/it'")
    try:
        root = resources.files(package)
    except ModuleNotFoundError:
        raise ValueError(f"{text!r}: package {package!r} is not installed") from None
    return Path(str(root.joinpath(inner)))
