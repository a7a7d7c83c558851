"""The JSON Schema of a definition document, for editors (kpi_definitions/kpi.schema.json).

Built from ``kpi_language.FIELDS``: the schema says what the checker accepts, never more.
"""

from __future__ import annotations

import json
from typing import Any

from cxkpi.kpi_language import DIMENSIONS, FIELDS, ID_PATTERN
from cxkpi.org import LEVEL_NAME

# a level the project declares in cxkpi.yml (org_levels); cxkpi validate checks which
ORG_LEVEL_PATTERN = "^" + LEVEL_NAME.pattern + "$"


def _dimension_items(options: tuple[str, ...] | None) -> dict[str, Any]:
    """A dimension's choices; org levels are the project's own, any level name here."""
    if options is None:
        return {"type": "string", "pattern": ORG_LEVEL_PATTERN}
    return {"enum": list(options)}


def json_schema() -> dict:
    """JSON Schema (draft 2020-12) of one definition document, from FIELDS."""
    simple: dict[str, dict[str, Any]] = {
        "str": {"type": "string"},
        "number": {"type": "number"},
        "bool": {"type": "boolean"},
        "integer": {"type": "integer", "minimum": 1},
        "expression": {"type": ["string", "number"]},
        "id": {"type": "string", "pattern": ID_PATTERN},
    }
    properties: dict[str, Any] = {}
    for name, spec in FIELDS.items():
        if spec.type in simple:
            prop = dict(simple[spec.type])
        elif spec.type == "list":
            prop = {"type": ["array", "string"] if name == "filters" else "array"}
        elif spec.type == "number_or_mapping":
            prop = {
                "oneOf": [
                    {"type": "number"},
                    {
                        "type": "object",
                        "additionalProperties": False,
                        "required": ["value"],
                        "properties": {
                            "value": {"type": "number"},
                            "by": {"type": "string", "format": "date"},
                            "milestones": {
                                "type": "array",
                                "items": {
                                    "type": "object",
                                    "additionalProperties": False,
                                    "required": ["date", "value"],
                                    "properties": {
                                        "date": {"type": "string", "format": "date"},
                                        "value": {"type": "number"},
                                    },
                                },
                            },
                        },
                    },
                ]
            }
        else:
            prop = {"type": "object"}
        if spec.enum:
            prop["enum"] = list(spec.enum)
        prop["description"] = spec.description
        properties[name] = prop
    properties["dimensions"].update(
        {
            "additionalProperties": False,
            "properties": {
                key: {
                    "type": "array",
                    "items": _dimension_items(options),
                }
                for key, options in DIMENSIONS.items()
            },
        }
    )
    properties["thresholds"].update(
        {
            "additionalProperties": False,
            "properties": {"on_track": {"type": "number"}, "at_risk": {"type": "number"}},
        }
    )
    properties["parents"]["items"] = {
        "oneOf": [
            {"type": "string", "pattern": ID_PATTERN},
            {
                "type": "object",
                "additionalProperties": False,
                "required": ["id"],
                "properties": {
                    "id": {"type": "string"},
                    "weight": {"type": "number", "exclusiveMinimum": 0},
                },
            },
        ]
    }
    properties["scale"].update({"items": {"type": "number"}, "minItems": 2, "maxItems": 2})
    properties["percentile"].update({"exclusiveMinimum": 0, "exclusiveMaximum": 1})
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "cxkpi goal, KPI or factor definition",
        "type": "object",
        "required": ["id"],
        "additionalProperties": False,
        "properties": properties,
    }


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=False) + "\n"
