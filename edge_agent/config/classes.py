"""Two classes of setting: *tunable* (the cloud may change it) and *privileged* (signed only).

Every field of every config model declares its class on the field itself::

    interval_s: float = tunable(default=1.0, gt=0)
    host: str = privileged(min_length=1)

``tunable`` and ``privileged`` are pydantic ``Field`` with the class recorded in the field's
JSON schema (``edge_agent_class``), so the class travels with the model and shows in its
schema. A desired state from the cloud may only name tunable fields; privileged ones (code,
commands, paths, hosts, ports, TLS material, CAN interfaces, fast-path policy, spool) change
only through a TUF-signed config target (docs/security.md). A field without a class is
treated as privileged: unknown means no.

A tunable field holding one nested model is a section: a desired state names the nested
fields one by one and each nested field's class decides. A tunable field holding a list or a
table of models is replaced as a whole, so every field of those models must be tunable too
(the test suite checks every installed module's model for this).
"""

from __future__ import annotations

import enum
import types
import typing
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic.fields import FieldInfo

from edge_agent.config.errors import ConfigIssue

CLASS_KEY = "edge_agent_class"
SIGNED_ONLY = "privileged setting: it changes only through a signed config target"


class SettingClass(enum.StrEnum):
    """Who may change a setting: the cloud's desired state, or only a signed config target."""

    TUNABLE = "tunable"
    PRIVILEGED = "privileged"


def _classified(setting_class: SettingClass, kwargs: dict[str, Any]) -> Any:
    extra = kwargs.pop("json_schema_extra", None) or {}
    if not isinstance(extra, dict):
        raise TypeError("json_schema_extra must be a dict on a classified field")
    return Field(json_schema_extra={**extra, CLASS_KEY: setting_class.value}, **kwargs)


def tunable(*args: Any, **kwargs: Any) -> Any:
    """A pydantic ``Field`` a desired state from the cloud may change (same arguments)."""
    if args:
        kwargs["default"] = args[0]
    return _classified(SettingClass.TUNABLE, kwargs)


def privileged(*args: Any, **kwargs: Any) -> Any:
    """A pydantic ``Field`` that changes only through a signed config target (same arguments)."""
    if args:
        kwargs["default"] = args[0]
    return _classified(SettingClass.PRIVILEGED, kwargs)


def setting_class(field: FieldInfo) -> SettingClass | None:
    """The class declared on ``field``, or None when it has none."""
    extra = field.json_schema_extra
    value = extra.get(CLASS_KEY) if isinstance(extra, dict) else None
    return SettingClass(value) if isinstance(value, str) else None


def section_model(annotation: Any) -> type[BaseModel] | None:
    """The one model a field holds directly (``M``, ``M | None``, ``M | Literal[False]``)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        models = [
            a
            for a in typing.get_args(annotation)
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        return models[0] if len(models) == 1 else None
    return None


def _contained_models(annotation: Any) -> Iterator[tuple[str, type[BaseModel]]]:
    """Models held inside lists, tables and unions: ``("[]", M)`` or ``(".*", M)``."""
    origin = typing.get_origin(annotation)
    arguments = typing.get_args(annotation)
    if origin in (list, tuple, set, frozenset):
        for argument in arguments:
            for suffix, model in _contained_models(argument):
                yield "[]" + suffix, model
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                yield "[]", argument
    elif origin in (dict, Mapping):
        value = arguments[1] if len(arguments) == 2 else None
        for suffix, model in _contained_models(value):
            yield ".*" + suffix, model
        if isinstance(value, type) and issubclass(value, BaseModel):
            yield ".*", value
    elif origin in (typing.Union, types.UnionType, typing.Annotated):
        for argument in arguments:
            if isinstance(argument, type) and issubclass(argument, BaseModel):
                continue  # a section, walked by the caller
            yield from _contained_models(argument)


@dataclass(frozen=True, slots=True)
class Setting:
    """One field as the walk found it.

    ``declared`` is the class on the field (None: unclassified); ``effective`` is what a
    desired state can actually do there: privileged if this field or any field above it is
    (``within`` is the effective class of the field above). ``replaced_whole`` says the
    field sits inside a list or table that a desired state replaces as a whole (so it must
    be tunable when the container is).
    """

    path: str
    model: type[BaseModel]
    name: str
    declared: SettingClass | None
    effective: SettingClass
    within: SettingClass
    replaced_whole: bool
    description: str


def walk_settings(
    model: type[BaseModel],
    prefix: str = "",
    *,
    within: SettingClass = SettingClass.TUNABLE,
    replaced_whole: bool = False,
    _seen: frozenset[type[BaseModel]] = frozenset(),
) -> Iterator[Setting]:
    """Every field of ``model`` and of the models nested in it, depth first."""
    if model in _seen:
        return
    seen = _seen | {model}
    for name, field in model.model_fields.items():
        declared = setting_class(field)
        effective = (
            SettingClass.PRIVILEGED
            if within is SettingClass.PRIVILEGED or declared is not SettingClass.TUNABLE
            else SettingClass.TUNABLE
        )
        path = f"{prefix}.{name}" if prefix else name
        yield Setting(
            path, model, name, declared, effective, within, replaced_whole, field.description or ""
        )
        section = section_model(field.annotation)
        if section is not None:
            yield from walk_settings(
                section, path, within=effective, replaced_whole=replaced_whole, _seen=seen
            )
        for suffix, contained in _contained_models(field.annotation):
            yield from walk_settings(
                contained, path + suffix, within=effective, replaced_whole=True, _seen=seen
            )


def refuse_privileged(
    document: Mapping[str, Any], model: type[BaseModel], path: str
) -> list[ConfigIssue]:
    """One issue per key of ``document`` that names a setting a desired state may not change.

    Only the declared classes are read: nothing in ``document`` is imported, run or even
    validated here. Keys the model does not know are left to validation (it refuses them).
    """
    issues: list[ConfigIssue] = []
    for key, value in document.items():
        field = model.model_fields.get(key) if isinstance(key, str) else None
        if field is None:
            continue
        where = f"{path}.{key}"
        if setting_class(field) is not SettingClass.TUNABLE:
            issues.append(ConfigIssue(where, SIGNED_ONLY))
            continue
        section = section_model(field.annotation)
        if section is not None and isinstance(value, Mapping):
            issues.extend(refuse_privileged(value, section, where))
    return issues


def merge_tunable(
    base: Mapping[str, Any], document: Mapping[str, Any], model: type[BaseModel]
) -> dict[str, Any]:
    """``base`` with the settings of ``document`` laid over it (sections merge, others replace)."""
    merged = dict(base)
    for key, value in document.items():
        field = model.model_fields.get(key)
        section = section_model(field.annotation) if field is not None else None
        below = merged.get(key)
        if section is not None and isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_tunable(below, value, section)
        else:
            merged[key] = value
    return merged
