"""'did you mean' for a mistyped config key.

msgspec reports an unknown key as ``Object contains unknown field `min_sprad_bps` - at `$.strategies.cross_exchange```;
this finds the Struct at that path in the config's schema and the declared key closest to the typed one.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable
from typing import Any

import msgspec.inspect as mi

# msgspec leaves out " - at `$`" for a key at the top level.
_UNKNOWN = re.compile(r"^Object contains unknown field `(?P<key>[^`]*)`(?: - at `(?P<path>\$[^`]*)`)?$")
_STEP = re.compile(r"\.(?P<name>[^.\[]+)|\[(?P<index>[^\]]*)\]")


def did_you_mean(message: str, schema: type) -> str:
    """``message`` with ``; did you mean 'x'?`` appended when it is msgspec's unknown-key error and a declared key
    at that path is close to the typed one; otherwise ``message`` unchanged."""
    m = _UNKNOWN.match(message)
    if m is None:
        return message
    struct = _struct_at(mi.type_info(schema), m["path"] or "$")
    if struct is None:
        return message
    return message + suggestion(m["key"], [f.encode_name for f in struct.fields])


def suggestion(key: str, names: Iterable[str]) -> str:
    """``; did you mean 'x'?`` for the declared name closest to ``key``, or "" when none is close."""
    close = difflib.get_close_matches(key, list(names), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _struct_at(info: Any, path: str) -> mi.StructType | None:
    """The StructType reached from ``info`` by a msgspec path such as ``$.venues[0].feed`` (None if the path
    leaves the schema's Structs)."""
    for step in _STEP.finditer(path[1:]):
        info = _unwrap(info)
        if step["name"] is not None:
            if not isinstance(info, mi.StructType):
                return None
            info = next((f.type for f in info.fields if f.encode_name == step["name"]), None)
        elif isinstance(info, (mi.VarTupleType, mi.ListType, mi.SetType, mi.FrozenSetType)):
            info = info.item_type
        elif isinstance(info, mi.DictType):
            info = info.value_type
        else:
            return None
        if info is None:
            return None
    info = _unwrap(info)
    return info if isinstance(info, mi.StructType) else None


def _unwrap(info: Any) -> Any:
    """The Struct inside an optional (``X | None``), or ``info`` itself."""
    if isinstance(info, mi.UnionType):
        structs = [t for t in info.types if isinstance(t, mi.StructType)]
        if len(structs) == 1:
            return structs[0]
    return info
