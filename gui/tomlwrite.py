"""Write the configuration back as TOML (the standard library only reads it).

Enough of TOML for a configuration: tables, arrays of tables, strings, integers, floats,
booleans, arrays and inline tables. Keys are written bare when they can be, else quoted.
"""

import json
import math
import re
from typing import Any

_BARE = re.compile(r"[A-Za-z0-9_-]+")


def key(name: str) -> str:
    """A key, bare or quoted."""
    return name if _BARE.fullmatch(name) else _string(name)


def _string(value: str) -> str:
    # JSON string escapes are valid TOML basic-string escapes, except that JSON may write
    # \u escapes for control characters, which TOML accepts too.
    return json.dumps(value, ensure_ascii=False)


def value(item: Any) -> str:
    """One value, inline."""
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, int):
        return str(item)
    if isinstance(item, float):
        if math.isnan(item):
            return "nan"
        if math.isinf(item):
            return "inf" if item > 0 else "-inf"
        return repr(item)
    if isinstance(item, str):
        return _string(item)
    if isinstance(item, list | tuple):
        return "[" + ", ".join(value(v) for v in item) + "]"
    if isinstance(item, dict):
        return "{ " + ", ".join(f"{key(k)} = {value(v)}" for k, v in item.items()) + " }"
    raise TypeError(f"cannot write {type(item).__name__} as TOML")


def _is_table_array(item: Any) -> bool:
    return isinstance(item, list) and bool(item) and all(isinstance(v, dict) for v in item)


def dumps(document: dict[str, Any]) -> str:
    """The document as TOML text."""
    lines: list[str] = []
    _table(document, [], lines)
    return "\n".join(lines).strip() + "\n"


def _table(table: dict[str, Any], path: list[str], lines: list[str]) -> None:
    scalars = [
        (k, v) for k, v in table.items() if not isinstance(v, dict) and not _is_table_array(v)
    ]
    for name, item in scalars:
        lines.append(f"{key(name)} = {value(item)}")
    for name, item in table.items():
        if isinstance(item, dict):
            sub = [*path, name]
            lines.append("")
            lines.append("[" + ".".join(key(p) for p in sub) + "]")
            _table(item, sub, lines)
        elif _is_table_array(item):
            sub = [*path, name]
            for entry in item:
                lines.append("")
                lines.append("[[" + ".".join(key(p) for p in sub) + "]]")
                _table(entry, sub, lines)
