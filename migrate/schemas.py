"""Generate the JSON Schema files in ``schemas/`` from the pydantic models.

``migrate schemas [--out DIR]`` rewrites them; ``tests/test_schemas.py`` fails when the
committed files differ from what the models generate.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel

from migrate import models

SCHEMAS: dict[str, type[BaseModel]] = {
    "failure-envelope.v1.schema.json": models.EnvelopeV1,
    "failure-recipe-line.v1.schema.json": models.RecipeLineV1,
    "failure-envelope.v2.schema.json": models.EnvelopeV2,
    "failure-recipe-line.v2.schema.json": models.RecipeLineV2,
    "queue-legacy.v1.schema.json": models.LegacyQueueV1,
    "queue-unified.v1.schema.json": models.UnifiedQueueV1,
    "queue-legacy.v2.schema.json": models.LegacyQueueV2,
    "queue-unified.v2.schema.json": models.UnifiedQueueV2,
}


def render(model: type[BaseModel]) -> str:
    schema = model.model_json_schema(mode="validation")
    schema = {"$schema": "https://json-schema.org/draft/2020-12/schema", **schema}
    return json.dumps(schema, indent=2, ensure_ascii=False, sort_keys=False) + "\n"


def default_dir() -> Path:
    return Path(__file__).resolve().parent.parent / "schemas"


def write_all(out: Path | None = None) -> list[Path]:
    out = out or default_dir()
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, model in SCHEMAS.items():
        path = out / name
        path.write_text(render(model), encoding="utf-8")
        written.append(path)
    return written
