"""JSON text as babynn writes it: NaN and infinity (not JSON) become null."""

from __future__ import annotations

import json
import math
from typing import Any


def json_safe(value: Any) -> Any:
    """`value` with every non-finite float replaced by None, in nested dicts and lists."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def dumps(doc: Any, indent: int | None = None) -> str:
    return json.dumps(json_safe(doc), indent=indent, allow_nan=False, ensure_ascii=False)
