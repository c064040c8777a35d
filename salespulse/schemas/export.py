"""JSON Schema files for CRM integrators: one per event type and reference record type."""

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from salespulse.schemas.alerts import StallAlert
from salespulse.schemas.events import ACTIVITY_MODELS
from salespulse.schemas.reference import REFERENCE_MODELS

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def json_schema(model: type[BaseModel], type_name: str, *, is_event: bool) -> dict[str, Any]:
    """The JSON Schema of one model, annotated for people who read it."""
    schema = model.model_json_schema(mode="validation")
    schema = {"$schema": JSON_SCHEMA_DIALECT, **schema}
    schema["title"] = f"salespulse {type_name} {'event' if is_event else 'record'}"
    # Tolerant readers: unknown fields are ignored, so CRMs may send more than this lists.
    schema["additionalProperties"] = True
    if is_event:
        event_type = schema["properties"]["event_type"]
        # null is an absent event_type, as for every other optional field.
        schema["properties"]["event_type"] = {
            "enum": [type_name, None],
            "description": event_type["description"],
        }
    return schema


def all_schemas() -> dict[str, dict[str, Any]]:
    """Every exported schema, by file stem (the event types, the reference record types, alerts)."""
    schemas = {name: json_schema(model, name, is_event=True) for name, model in ACTIVITY_MODELS.items()}
    schemas.update(
        {name: json_schema(model, name, is_event=False) for name, model in REFERENCE_MODELS.items()}
    )
    alert = StallAlert.model_json_schema(mode="serialization")
    schemas["alert"] = {"$schema": JSON_SCHEMA_DIALECT, **alert, "title": "salespulse stall alert transition"}
    return schemas


def export_json_schemas(directory: Path, extra: dict[str, dict[str, Any]] | None = None) -> list[Path]:
    """Write ``<type>.schema.json`` files into ``directory`` and return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for name, schema in {**all_schemas(), **(extra or {})}.items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        written.append(path)
    return written
