"""A small JSON Schema checker for the subset the admin API's OpenAPI 3.1 document uses.

``jsonschema`` is not among the project's dependencies; this covers what the
document uses (``$ref``, ``type`` incl. lists, ``enum``, ``properties``,
``required``, ``additionalProperties: false``, ``items``, ``minimum``,
``minProperties``, ``maxItems``, ``pattern``, ``format: date-time``) and fails
loudly on any other keyword, so the document cannot outgrow it silently.
"""

from __future__ import annotations

import re
from typing import Any

_KNOWN = {
    "$ref",
    "type",
    "enum",
    "properties",
    "required",
    "additionalProperties",
    "items",
    "minimum",
    "minProperties",
    "maxItems",
    "pattern",
    "format",
    "description",
    "default",
}
_DATE_TIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?(Z|[+-][0-9]{2}:[0-9]{2})"
)
_TYPES = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
}


def errors(schema: dict[str, Any], value: Any, root: dict[str, Any], at: str = "$") -> list[str]:
    """Every way ``value`` breaks ``schema`` (empty when it conforms)."""
    unknown = set(schema) - _KNOWN
    if unknown:
        raise AssertionError(f"{at}: schema keyword(s) the checker does not know: {unknown}")
    if "$ref" in schema:
        target: Any = root
        for part in schema["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        return errors(target, value, root, at)
    out: list[str] = []
    if "type" in schema:
        types = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_TYPES[t](value) for t in types):
            return [f"{at}: {value!r} is not of type {types}"]
    if "enum" in schema and value not in schema["enum"]:
        out.append(f"{at}: {value!r} not in {schema['enum']}")
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", []):
            if key not in value:
                out.append(f"{at}: missing required '{key}'")
        if schema.get("additionalProperties") is False:
            out += [f"{at}: unexpected '{k}'" for k in value if k not in props]
        if len(value) < schema.get("minProperties", 0):
            out.append(f"{at}: fewer than {schema['minProperties']} properties")
        for key, sub in props.items():
            if key in value:
                out += errors(sub, value[key], root, f"{at}.{key}")
    if isinstance(value, list):
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            out.append(f"{at}: more than {schema['maxItems']} items")
        if "items" in schema:
            for i, item in enumerate(value):
                out += errors(schema["items"], item, root, f"{at}[{i}]")
    if isinstance(value, str):
        if schema.get("format") == "date-time" and not _DATE_TIME.fullmatch(value):
            out.append(f"{at}: {value!r} is not an RFC 3339 date-time")
        if "pattern" in schema and not re.search(schema["pattern"], value):
            out.append(f"{at}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            out.append(f"{at}: {value} < {schema['minimum']}")
    return out


def _template_matches(template: str, path: str) -> bool:
    pattern = re.sub(r"\\\{[A-Za-z]+\\\}", "[^/]+", re.escape(template))
    return re.fullmatch(pattern, path) is not None


def response_errors(
    doc: dict[str, Any], method: str, path: str, status: int, body: Any
) -> list[str]:
    """Every way an answer (``status``, JSON ``body``) to ``method path`` breaks ``doc``.

    The operation is found by matching ``path`` (no query string) against the path
    templates; a request that matches no operation is checked against the document's
    ``x-unmatchedRequests`` (404 for an unknown path, 405 for a known path and another
    method).
    """
    templates = [t for t in doc["paths"] if _template_matches(t, path)]
    operation = next(
        (doc["paths"][t][method.lower()] for t in templates if method.lower() in doc["paths"][t]),
        None,
    )
    if operation is not None:
        documented = operation["responses"]
        where = f"{method} {templates[0]}"
    else:
        documented = doc["x-unmatchedRequests"]
        where = f"{method} {path} (no operation)"
        wanted = 405 if templates else 404
        if status != wanted:
            return [f"{where}: answered {status}, the document says {wanted}"]
    response = documented.get(str(status))
    if response is None:
        return [f"{where}: status {status} is not documented ({sorted(documented)})"]
    if "$ref" in response:
        response = _resolve(doc, response["$ref"])
    schema = response.get("content", {}).get("application/json", {}).get("schema")
    if schema is None:
        return []
    return errors(schema, body, doc, f"{where} {status}")


def _resolve(root: dict[str, Any], ref: str) -> Any:
    target: Any = root
    for part in ref.removeprefix("#/").split("/"):
        target = target[part]
    return target
