"""JSON for plans and everything else the CLI, the service and the store write: orjson
(a C encoder that takes numpy arrays and scalars directly), compact unless an indent is
asked for. JSON has no NaN or infinity, and orjson would write them as null: they are
refused here instead, naming where they are.

>>> dumps({"a": [1.5, 2]})
b'{"a":[1.5,2]}'
>>> dumps({"a": float("nan")})
Traceback (most recent call last):
ValueError: a: NaN or an infinity cannot be written as JSON
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
import orjson

_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if hasattr(obj, "value") and isinstance(obj.value, str):  # an Enum such as Status
        return obj.value
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def assert_finite(obj: Any, where: str = "") -> None:
    """Raise ValueError naming the first NaN or infinity in ``obj`` (dicts, lists,
    floats, numpy arrays)."""
    stack: list[tuple[str, Any]] = [(where, obj)]
    while stack:
        path, v = stack.pop()
        if isinstance(v, float):
            if not math.isfinite(v):
                raise ValueError(f"{path or 'value'}: NaN or an infinity cannot be written as JSON")
        elif isinstance(v, dict):
            stack.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif isinstance(v, list | tuple):
            stack.extend((f"{path}[{i}]", x) for i, x in enumerate(v))
        elif isinstance(v, np.ndarray) and v.dtype.kind == "f" and not np.isfinite(v).all():
            raise ValueError(f"{path or 'value'}: NaN or an infinity cannot be written as JSON")


def dumps(obj: Any, indent: int | None = None, *, checked: bool = False) -> bytes:
    """``obj`` as UTF-8 JSON. ``indent`` 2 is orjson's own; any other indent goes through
    the standard library (slower). ``checked`` skips the NaN/infinity walk when the caller
    has done it (a plan checks its columns with numpy)."""
    if not checked:
        assert_finite(obj)
    if indent in (None, 0):
        return orjson.dumps(obj, default=_default, option=_OPTIONS)
    if indent == 2:
        return orjson.dumps(obj, default=_default, option=_OPTIONS | orjson.OPT_INDENT_2)
    return json.dumps(
        orjson.loads(orjson.dumps(obj, default=_default, option=_OPTIONS)),
        indent=indent,
        allow_nan=False,
    ).encode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
