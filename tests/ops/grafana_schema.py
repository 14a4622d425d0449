"""Validate a dashboard against Grafana's own dashboard schema, as shipped in Python.

Grafana's dashboard schema is written in CUE (the dashboard kind and each panel
plugin's ``panelcfg``); the ``grafana-foundation-sdk`` package (pinned in the dev
dependencies, one release per Grafana version) ships typed models generated from it
by Grafana's ``cog``: ``Dashboard``, ``Panel``, ``FieldConfig``, each panel plugin's
``Options`` and ``FieldConfig``, and each data source's query. Neither that package
nor npm's ``@grafana/schema`` (TypeScript types only) ships a JSON Schema, so this
module checks strictly with the models:

* **unknown fields**: the dashboard is decoded (``Dashboard.from_json``, with the
  default plugins registered so panel options and Prometheus queries decode into
  their own models) and encoded again; every key of the input the round trip drops
  is a field the schema does not have, and every value it changes was not understood;
* **types**: every attribute of the decoded model tree is checked against the model's
  type annotations (Literal and enum values, lists, maps, nested models, unions).

What the models cannot tell: whether a field the schema *requires* is missing (the
models fill a default), and CUE's numeric bounds (``gridPos.w <= 24``); the
hand-written subset check in ``test_ops_grafana.py`` covers those that matter.
"""

from __future__ import annotations

import copy
import enum
import json
import types
import typing
from functools import cache
from typing import Any

#: Keys Grafana's "Export for sharing externally" adds and its import strips again;
#: they are not part of the dashboard model, so the schema has none of them.
EXPORT_METADATA = frozenset({"__requires", "__inputs", "__elements"})


@cache
def _sdk() -> types.ModuleType:
    """The SDK's dashboard models, with the default panel and query plugins registered."""
    from grafana_foundation_sdk.cog.plugins import register_default_plugins
    from grafana_foundation_sdk.models import dashboard

    register_default_plugins()
    return dashboard


def schema_errors(dashboard: dict[str, Any]) -> list[str]:
    """Every way ``dashboard`` (Grafana's JSON model) breaks the schema; empty if none."""
    from grafana_foundation_sdk.cog.encoder import JSONEncoder

    models = _sdk()
    data = {k: v for k, v in copy.deepcopy(dashboard).items() if k not in EXPORT_METADATA}
    try:
        model = models.Dashboard.from_json(copy.deepcopy(data))
    except (KeyError, TypeError, AttributeError, ValueError) as exc:
        return [f"$: the schema's models cannot decode it: {type(exc).__name__}: {exc}"]
    out = _round_trip(data, json.loads(json.dumps(model, cls=JSONEncoder)), "$")
    out += _type_errors(model, type(model), "$")
    return out


def _round_trip(given: Any, back: Any, at: str) -> list[str]:
    """Keys of ``given`` that the round trip lost, and values it changed."""
    if isinstance(given, dict) and isinstance(back, dict):
        out = []
        for key, value in given.items():
            if key not in back:
                out.append(f"{at}.{key}: not a field of the schema")
            else:
                out += _round_trip(value, back[key], f"{at}.{key}")
        return out
    if isinstance(given, list) and isinstance(back, list) and len(given) == len(back):
        return [
            e
            for i, (g, b) in enumerate(zip(given, back, strict=True))
            for e in _round_trip(g, b, f"{at}[{i}]")
        ]
    if given != back or type(given) is not type(back):
        return [f"{at}: {given!r} came back as {back!r}"]
    return []


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _hints(cls: type) -> dict[str, Any]:
    try:
        return typing.get_type_hints(cls)
    except (NameError, TypeError):  # a hint the SDK cannot resolve: check nothing there
        return {}


def _type_errors(value: Any, hint: Any, at: str) -> list[str]:
    """Every way ``value`` (a decoded model or a plain value) breaks the annotation ``hint``."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if hint in (Any, object) or isinstance(hint, typing.TypeVar):
        # panel options and custom field config: typed ``object`` on Panel, decoded into
        # the panel plugin's own model by its hook; check that model's fields
        return _model_errors(value, at) if hasattr(value, "to_json") else []
    if origin in (typing.Union, types.UnionType):
        results = [_type_errors(value, arg, at) for arg in args]
        if any(not r for r in results):
            return []
        tried = [r for arg, r in zip(args, results, strict=True) if arg is not type(None)]
        if len(tried) == 1:  # Optional[X]: say what is wrong inside X
            return tried[0]
        for arg, result in zip(args, results, strict=True):  # a model: what is wrong inside it
            if (
                isinstance(arg, type)
                and arg not in (int, float, bool, str)
                and isinstance(value, arg)
            ):
                return result
        return [f"{at}: {_short(value)} is none of {[getattr(a, '__name__', a) for a in args]}"]
    if hint is type(None):
        return [] if value is None else [f"{at}: {_short(value)} is not null"]
    if origin is typing.Literal:
        return [] if value in args else [f"{at}: {_short(value)} not in {list(args)}"]
    if origin is list:
        if not isinstance(value, list):
            return [f"{at}: {_short(value)} is not a list"]
        return [e for i, v in enumerate(value) for e in _type_errors(v, args[0], f"{at}[{i}]")]
    if origin is dict:
        if not isinstance(value, dict):
            return [f"{at}: {_short(value)} is not a map"]
        return [e for k, v in value.items() for e in _type_errors(v, args[1], f"{at}.{k}")]
    if not isinstance(hint, type):
        return []  # a construct the generated models do not use
    if issubclass(hint, enum.Enum):
        if isinstance(value, hint) or value in {m.value for m in hint}:
            return []
        return [f"{at}: {_short(value)} not in {[m.value for m in hint]}"]
    if hint is bool:
        return [] if isinstance(value, bool) else [f"{at}: {_short(value)} is not a boolean"]
    if hint is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else [f"{at}: {_short(value)} is not an integer"]
    if hint is float:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        return [] if ok else [f"{at}: {_short(value)} is not a number"]
    if hint is str:
        return [] if isinstance(value, str) else [f"{at}: {_short(value)} is not a string"]
    if not isinstance(value, hint):
        return [f"{at}: {_short(value)} is not a {hint.__name__}"]
    return _model_errors(value, at)


def _model_errors(value: Any, at: str) -> list[str]:
    """Every attribute of a decoded model checked against its class's annotations."""
    out: list[str] = []
    for name, sub in _hints(type(value)).items():
        if hasattr(value, name):
            out += _type_errors(getattr(value, name), sub, f"{at}.{name}")
    return out
