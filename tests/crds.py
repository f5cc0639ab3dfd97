"""Validate a custom resource against the `openAPIV3Schema` of its real CRD, as the API server does.

The API server prunes every field that a structural schema does not declare, silently; so here an
object schema with `properties` is closed (`additionalProperties: false`) unless it says
`x-kubernetes-preserve-unknown-fields`, and a field the pinned CRD lacks fails loudly instead.
CEL rules (`x-kubernetes-validations`) and admission webhooks are not evaluated here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml


def _closed(schema: Any) -> Any:
    """A copy of `schema` in which every object with declared properties refuses other fields."""
    if isinstance(schema, list):
        return [_closed(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    closed = {
        key: {name: _closed(sub) for name, sub in value.items()}  # names are data, not schemas
        if key == "properties"
        else _closed(value)
        for key, value in schema.items()
    }
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        closed["additionalProperties"] = False
    return closed


def crd_schema(crd_file: Path, api_version: str) -> dict[str, Any]:
    """The closed `openAPIV3Schema` that `crd_file` declares for `api_version` (group/version)."""
    return _schema_of(yaml.safe_load(crd_file.read_text()), crd_file, api_version)


def _schema_of(crd: dict[str, Any], crd_file: Path, api_version: str) -> dict[str, Any]:
    group = crd["spec"]["group"]
    for version in crd["spec"]["versions"]:
        if f"{group}/{version['name']}" == api_version:
            return _closed(version["schema"]["openAPIV3Schema"])
    served = [f"{group}/{v['name']}" for v in crd["spec"]["versions"]]
    raise ValueError(f"{crd_file.name} has no version {api_version!r}; it serves {served}")


def validate_custom_resource(obj: dict[str, Any], crd_file: Path) -> None:
    """Raise `jsonschema.ValidationError` naming the CRD file and the offending field's path if
    `obj` does not match the schema of its apiVersion and kind in `crd_file`."""
    crd = yaml.safe_load(crd_file.read_text())
    kind = crd["spec"]["names"]["kind"]
    if obj.get("kind") != kind:
        raise ValueError(
            f"{crd_file.name} defines kind {kind!r}, the object is {obj.get('kind')!r}"
        )
    schema = _schema_of(crd, crd_file, obj.get("apiVersion", ""))
    validator = jsonschema.Draft7Validator(schema)
    errors = sorted(validator.iter_errors(obj), key=lambda e: [str(p) for p in e.absolute_path])
    if errors:
        where = "\n".join(
            f"  {'.'.join(map(str, e.absolute_path)) or '<root>'}: {e.message}" for e in errors
        )
        name = obj.get("metadata", {}).get("name")
        raise jsonschema.ValidationError(
            f"{kind} {name!r} does not match {crd_file.name}:\n{where}"
        )
