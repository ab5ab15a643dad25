"""Type hints to JSON Schema, JSON to typed values and back, and docstrings.

Everything here is pure Python with no host calls, so it runs natively in unit
tests exactly as it runs inside the component (where it runs at build time,
when the decorators fire during pre-initialisation).
"""

from __future__ import annotations

import collections.abc
import dataclasses
import enum
import inspect
import math
import re
import types
import typing
from typing import Any, Literal, Union

NoneType = type(None)

__all__ = [
    "ArgumentError",
    "Doc",
    "Field",
    "SchemaBuilder",
    "from_json",
    "is_object_type",
    "object_fields",
    "parse_doc",
    "split_optional",
    "to_json",
    "unwrap_annotated",
]


class ArgumentError(ValueError):
    """A JSON value does not fit the type it is converted to; names the field."""


# --------------------------------------------------------------------------
# Docstrings (Google style)
# --------------------------------------------------------------------------

_SECTION = re.compile(
    r"^(Args|Arguments|Parameters|Params|Keyword Args|Keyword Arguments|Attributes|Fields"
    r"|Returns?|Yields?|Raises|Examples?|Notes?|Todo|Warnings?|See Also|References|Methods)\s*:\s*$"
)
_ENTRY = re.compile(r"^\*{0,2}([A-Za-z_][A-Za-z0-9_]*)\s*(?:\([^)]*\))?\s*:\s*(.*)$")
_PARAM_SECTIONS = {"args", "arguments", "parameters", "params", "keyword args", "keyword arguments"}
_ATTR_SECTIONS = {"attributes", "fields"}


@dataclasses.dataclass
class Doc:
    """A parsed docstring."""

    #: The first paragraph, its lines joined by spaces ("" when there is none).
    summary: str = ""
    #: Descriptions from `Args:` (and its synonyms), by parameter name.
    params: dict[str, str] = dataclasses.field(default_factory=dict)
    #: Descriptions from `Attributes:`, by field name.
    attributes: dict[str, str] = dataclasses.field(default_factory=dict)


def parse_doc(doc: str | None) -> Doc:
    """Splits a Google-style docstring into its summary and entry sections."""
    out = Doc()
    if not doc or not doc.strip():
        return out
    lines = inspect.cleandoc(doc).splitlines()
    summary: list[str] = []
    i = 0
    while i < len(lines) and lines[i].strip() and not _SECTION.match(lines[i]):
        summary.append(lines[i].strip())
        i += 1
    out.summary = " ".join(summary)
    section: str | None = None
    body: list[str] = []

    def flush() -> None:
        if section in _PARAM_SECTIONS:
            out.params.update(_entries(body))
        elif section in _ATTR_SECTIONS:
            out.attributes.update(_entries(body))

    for line in lines[i:]:
        m = _SECTION.match(line)
        if m:
            flush()
            section, body = m.group(1).lower(), []
        elif section is not None:
            if line.strip() and not line[0].isspace():
                # Unindented text ends the section.
                flush()
                section, body = None, []
            else:
                body.append(line)
    flush()
    return out


def _entries(body: list[str]) -> dict[str, str]:
    """`name (type): text` entries, continuation lines indented deeper."""
    indents = [len(line) - len(line.lstrip()) for line in body if line.strip()]
    if not indents:
        return {}
    base = min(indents)
    entries: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in body:
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip())
        text = line.strip()
        if indent == base:
            m = _ENTRY.match(text)
            if m:
                current = entries.setdefault(m.group(1), [])
                if m.group(2):
                    current.append(m.group(2).strip())
                continue
            current = None
        elif current is not None:
            current.append(text)
    return {name: " ".join(parts) for name, parts in entries.items() if parts}


def class_doc(cls: type) -> Doc:
    """The docstring of a dataclass or TypedDict, ignoring the generated one."""
    doc = cls.__dict__.get("__doc__")
    if not isinstance(doc, str):
        return Doc()
    if dataclasses.is_dataclass(cls) and doc.startswith(cls.__name__ + "("):
        # The signature dataclasses writes when the class has no docstring.
        return Doc()
    return parse_doc(doc)


# --------------------------------------------------------------------------
# Type inspection
# --------------------------------------------------------------------------


def unwrap_annotated(tp: Any) -> tuple[Any, str | None]:
    """`Annotated[X, "description"]` -> (X, "description"); anything else -> (tp, None)."""
    description = None
    while typing.get_origin(tp) is typing.Annotated:
        args = typing.get_args(tp)
        tp = args[0]
        for meta in args[1:]:
            if isinstance(meta, str):
                description = meta
    return tp, description


def _strip_required(tp: Any) -> Any:
    """Removes the TypedDict markers `Required[...]` / `NotRequired[...]`."""
    while typing.get_origin(tp) in (typing.Required, typing.NotRequired):
        tp = typing.get_args(tp)[0]
    return tp


def _is_union(tp: Any) -> bool:
    return typing.get_origin(tp) in (Union, types.UnionType)


def split_optional(tp: Any) -> tuple[Any, bool]:
    """`X | None` -> (X, True); anything else -> (tp, False)."""
    tp, _ = unwrap_annotated(_strip_required(tp))
    if _is_union(tp):
        args = typing.get_args(tp)
        rest = tuple(a for a in args if a is not NoneType)
        if len(rest) < len(args):
            if not rest:
                return NoneType, True
            return (rest[0] if len(rest) == 1 else Union[rest]), True
    return tp, False


def is_object_type(tp: Any) -> bool:
    """A dataclass or TypedDict class: what becomes a JSON object with properties."""
    return isinstance(tp, type) and (dataclasses.is_dataclass(tp) or typing.is_typeddict(tp))


@dataclasses.dataclass
class Field:
    """One property of an object schema: a parameter, a dataclass field or a TypedDict key."""

    name: str
    type: Any
    description: str | None = None
    has_default: bool = False
    default: Any = None
    #: TypedDict keys only: whether the key must be present (`total`, `Required`).
    key_required: bool = True

    @property
    def optional(self) -> bool:
        return split_optional(self.type)[1]


def _hints(obj: Any) -> dict[str, Any]:
    try:
        return typing.get_type_hints(obj, include_extras=True)
    except Exception as e:  # a forward reference that does not resolve
        raise TypeError(f"cannot read the type hints of {getattr(obj, '__qualname__', obj)!r}: {e}") from None


def object_fields(cls: type, *, for_input: bool) -> list[Field]:
    """The fields of a dataclass or TypedDict, with descriptions from its docstring."""
    doc = class_doc(cls)
    hints = _hints(cls)
    fields: list[Field] = []
    if dataclasses.is_dataclass(cls):
        for f in dataclasses.fields(cls):
            if for_input and not f.init:
                continue
            tp = hints.get(f.name, Any)
            _, annotated = unwrap_annotated(tp)
            field = Field(f.name, tp, annotated or doc.attributes.get(f.name))
            if f.default is not dataclasses.MISSING:
                field.has_default, field.default = True, f.default
            elif f.default_factory is not dataclasses.MISSING:
                field.has_default, field.default = True, f.default_factory()
            fields.append(field)
    else:
        required_keys = getattr(cls, "__required_keys__", frozenset(hints))
        for name, tp in hints.items():
            _, annotated = unwrap_annotated(_strip_required(tp))
            fields.append(
                Field(name, tp, annotated or doc.attributes.get(name), key_required=name in required_keys)
            )
    return fields


# --------------------------------------------------------------------------
# Schemas
# --------------------------------------------------------------------------

_SIMPLE = {str: "string", bool: "boolean", int: "integer", float: "number", NoneType: "null"}


class SchemaBuilder:
    """Builds one JSON Schema (2020-12) document.

    Objects are inlined; a dataclass or TypedDict that contains itself goes into
    `$defs` and is referenced, so recursive types work. `for_input` selects the
    rules for `required`: an input property is required unless it has a default
    or is Optional; an output property is required unless it is Optional (None
    values are left out of structured output).
    """

    def __init__(self, *, for_input: bool) -> None:
        self.for_input = for_input
        self.defs: dict[str, dict[str, Any]] = {}
        self._stack: list[type] = []
        self._recursive: set[type] = set()
        self._names: dict[type, str] = {}

    # The root: an object of named fields.
    def root(self, fields: list[Field], description: str | None = None) -> dict[str, Any]:
        schema = self._properties(fields)
        if description:
            schema = {"description": description, **schema}
        if self.defs:
            schema["$defs"] = dict(sorted(self.defs.items()))
        return schema

    def root_object(self, cls: type) -> dict[str, Any]:
        """The schema of a dataclass or TypedDict as a document root."""
        self._stack.append(cls)
        try:
            schema = self._object_body(cls)
        finally:
            self._stack.pop()
        if cls in self._recursive:
            # The root refers to itself: `#` is the document.
            schema = _replace_ref(schema, f"#/$defs/{self._defname(cls)}", "#")
            self.defs.pop(self._defname(cls), None)
        if self.defs:
            schema["$defs"] = dict(sorted(self.defs.items()))
        return schema

    def of(self, tp: Any) -> dict[str, Any]:
        """The schema of one type."""
        tp, description = unwrap_annotated(_strip_required(tp))
        schema = self._of(tp)
        if description:
            schema = {"description": description, **schema}
        return schema

    def _of(self, tp: Any) -> dict[str, Any]:
        if tp is Any or tp is inspect.Parameter.empty or tp is object:
            return {}
        if tp is None:
            tp = NoneType
        if tp in _SIMPLE:
            return {"type": _SIMPLE[tp]}
        origin = typing.get_origin(tp)
        if origin is Literal:
            return _enum_schema(list(typing.get_args(tp)), tp)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            schema = _enum_schema([m.value for m in tp], tp)
            doc = parse_doc(tp.__dict__.get("__doc__")).summary
            return {"description": doc, **schema} if doc else schema
        if _is_union(tp):
            inner, optional = split_optional(tp)
            if optional:
                if inner is NoneType:
                    return {"type": "null"}
                schema = self.of(inner)
                if set(schema) == {"type"} and isinstance(schema["type"], str):
                    return {"type": [schema["type"], "null"]}
                return {"anyOf": [schema, {"type": "null"}]}
            return {"anyOf": [self.of(a) for a in typing.get_args(tp)]}
        if tp in (list, tuple, set, frozenset) or origin in (
            list,
            set,
            frozenset,
            collections.abc.Sequence,
            collections.abc.Set,
            collections.abc.Iterable,
        ):
            args = typing.get_args(tp)
            schema: dict[str, Any] = {"type": "array"}
            if args:
                schema["items"] = self.of(args[0])
            if origin in (set, frozenset, collections.abc.Set) or tp in (set, frozenset):
                schema["uniqueItems"] = True
            return schema
        if origin is tuple:
            args = typing.get_args(tp)
            if len(args) == 2 and args[1] is Ellipsis:
                return {"type": "array", "items": self.of(args[0])}
            items = [self.of(a) for a in args]
            return {"type": "array", "prefixItems": items, "items": False, "minItems": len(items)}
        if tp is dict or origin in (dict, collections.abc.Mapping):
            args = typing.get_args(tp)
            if args and args[0] is not str:
                raise TypeError(f"{_name(tp)}: JSON object keys are strings; use dict[str, ...]")
            schema = {"type": "object"}
            if args:
                schema["additionalProperties"] = self.of(args[1])
            return schema
        if is_object_type(tp):
            return self._object(tp)
        raise TypeError(
            f"moat cannot describe the type {_name(tp)} in a JSON Schema; use str, int, float, bool, "
            "None, list[...], dict[str, ...], Literal[...], an Enum, a dataclass or a TypedDict"
        )

    def _object(self, cls: type) -> dict[str, Any]:
        if cls in self._stack:
            self._recursive.add(cls)
            return {"$ref": f"#/$defs/{self._defname(cls)}"}
        self._stack.append(cls)
        try:
            schema = self._object_body(cls)
        finally:
            self._stack.pop()
        if cls in self._recursive:
            self.defs[self._defname(cls)] = schema
            return {"$ref": f"#/$defs/{self._defname(cls)}"}
        return schema

    def _object_body(self, cls: type) -> dict[str, Any]:
        schema = self._properties(object_fields(cls, for_input=self.for_input))
        summary = class_doc(cls).summary
        return {"description": summary, **schema} if summary else schema

    def _properties(self, fields: list[Field]) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        required: list[str] = []
        for f in fields:
            prop = self.of(f.type)
            if f.description:
                prop = {"description": f.description, **{k: v for k, v in prop.items() if k != "description"}}
            if self.for_input and f.has_default:
                try:
                    prop["default"] = to_json(f.default)
                except (TypeError, ValueError):
                    pass  # a default JSON cannot show is simply not shown
            properties[f.name] = prop
            if self._required(f):
                required.append(f.name)
        schema: dict[str, Any] = {"type": "object", "properties": properties}
        if required:
            schema["required"] = required
        schema["additionalProperties"] = False
        return schema

    def _required(self, f: Field) -> bool:
        if f.optional or not f.key_required:
            return False
        return not (self.for_input and f.has_default)

    def _defname(self, cls: type) -> str:
        if cls not in self._names:
            base = re.sub(r"[^A-Za-z0-9_.-]", "_", cls.__name__) or "T"
            name, n = base, 1
            taken = set(self._names.values())
            while name in taken:
                n += 1
                name = f"{base}{n}"
            self._names[cls] = name
        return self._names[cls]


def _enum_schema(values: list[Any], tp: Any) -> dict[str, Any]:
    for v in values:
        if not (v is None or isinstance(v, (str, int, float, bool))):
            raise TypeError(f"{_name(tp)}: enum values must be str, int, float, bool or None, not {v!r}")
    kinds = {_SIMPLE[type(v)] if type(v) in _SIMPLE else "number" for v in values}
    schema: dict[str, Any] = {}
    if len(kinds) == 1:
        schema["type"] = kinds.pop()
    schema["enum"] = values
    return schema


def _replace_ref(node: Any, old: str, new: str) -> Any:
    if isinstance(node, dict):
        return {k: (new if k == "$ref" and v == old else _replace_ref(v, old, new)) for k, v in node.items()}
    if isinstance(node, list):
        return [_replace_ref(v, old, new) for v in node]
    return node


def _name(tp: Any) -> str:
    if isinstance(tp, type):
        return tp.__qualname__
    return repr(tp).replace("typing.", "")


# --------------------------------------------------------------------------
# JSON -> typed Python values (arguments)
# --------------------------------------------------------------------------


def _json_kind(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, (int, float)):
        return "a number"
    if isinstance(v, str):
        return "a string"
    if isinstance(v, list):
        return "an array"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


def _fail(path: str, expected: str, v: Any) -> ArgumentError:
    where = f"`{path}`: " if path else ""
    return ArgumentError(f"{where}expected {expected}, got {_json_kind(v)}")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def from_json(v: Any, tp: Any, path: str = "") -> Any:
    """Converts a decoded JSON value to `tp`: dicts become dataclasses, and so on.

    Raises ArgumentError naming the field when the value does not fit.
    """
    tp, _ = unwrap_annotated(_strip_required(tp))
    if tp is Any or tp is inspect.Parameter.empty or tp is object:
        return v
    if tp is None or tp is NoneType:
        if v is not None:
            raise _fail(path, "null", v)
        return None
    if tp is str:
        if not isinstance(v, str):
            raise _fail(path, "a string", v)
        return v
    if tp is bool:
        if not isinstance(v, bool):
            raise _fail(path, "a boolean", v)
        return v
    if tp is int:
        if isinstance(v, float) and v.is_integer():
            return int(v)
        if not isinstance(v, int) or isinstance(v, bool):
            raise _fail(path, "an integer", v)
        return v
    if tp is float:
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise _fail(path, "a number", v)
        return float(v)
    origin = typing.get_origin(tp)
    if origin is Literal:
        for option in typing.get_args(tp):
            if type(option) is type(v) and option == v:
                return option
        raise ArgumentError(f"`{path}`: expected one of {list(typing.get_args(tp))!r}, got {v!r}")
    if isinstance(tp, type) and issubclass(tp, enum.Enum):
        for member in tp:
            if type(member.value) is type(v) and member.value == v:
                return member
        raise ArgumentError(f"`{path}`: expected one of {[m.value for m in tp]!r}, got {v!r}")
    if _is_union(tp):
        options = typing.get_args(tp)
        if v is None and NoneType in options:
            return None
        errors = []
        for option in options:
            if option is NoneType:
                continue
            try:
                return from_json(v, option, path)
            except ArgumentError as e:
                errors.append(e)
        raise errors[0] if len(errors) == 1 else _fail(path, f"a value of type {_name(tp)}", v)
    if tp in (list, tuple, set, frozenset) or origin in (
        list,
        tuple,
        set,
        frozenset,
        collections.abc.Sequence,
        collections.abc.Set,
        collections.abc.Iterable,
    ):
        if not isinstance(v, list):
            raise _fail(path, "an array", v)
        args = typing.get_args(tp)
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(v) != len(args):
                raise ArgumentError(f"`{path}`: expected an array of {len(args)} items, got {len(v)}")
            return tuple(from_json(x, a, f"{path}[{i}]") for i, (x, a) in enumerate(zip(v, args)))
        item = args[0] if args else Any
        items = [from_json(x, item, f"{path}[{i}]") for i, x in enumerate(v)]
        kind = origin or tp
        if kind in (tuple,):
            return tuple(items)
        if kind in (set, collections.abc.Set):
            return set(items)
        if kind is frozenset:
            return frozenset(items)
        return items
    if tp is dict or origin in (dict, collections.abc.Mapping):
        if not isinstance(v, dict):
            raise _fail(path, "an object", v)
        args = typing.get_args(tp)
        value_type = args[1] if args else Any
        return {k: from_json(x, value_type, _join(path, k)) for k, x in v.items()}
    if is_object_type(tp):
        if not isinstance(v, dict):
            raise _fail(path, "an object", v)
        return build_object(tp, v, path)
    raise ArgumentError(f"`{path}`: moat cannot convert JSON to {_name(tp)}")


def convert_fields(fields: list[Field], v: dict[str, Any], path: str = "", *, arguments: bool = False) -> dict[str, Any]:
    """Converts the members of a JSON object to keyword arguments for `fields`.

    Fields absent from `v` are left out when they have a default (so the
    default applies) and set to None when Optional; otherwise they are errors.
    """
    known = {f.name: f for f in fields}
    for key in v:
        if key not in known:
            raise ArgumentError(f"unknown argument `{key}`" if arguments else f"`{_join(path, key)}` is not a known field")
    out: dict[str, Any] = {}
    for f in fields:
        if f.name in v:
            out[f.name] = from_json(v[f.name], f.type, _join(path, f.name))
        elif f.has_default or not f.key_required:
            continue
        elif f.optional:
            out[f.name] = None
        else:
            what = "argument" if arguments else "field"
            raise ArgumentError(f"missing required {what} `{_join(path, f.name)}`")
    return out


def build_object(cls: type, v: dict[str, Any], path: str = "") -> Any:
    kwargs = convert_fields(object_fields(cls, for_input=True), v, path)
    if dataclasses.is_dataclass(cls):
        return cls(**kwargs)
    return kwargs  # a TypedDict is a plain dict


# --------------------------------------------------------------------------
# Typed Python values -> JSON (results)
# --------------------------------------------------------------------------


def to_json(v: Any, tp: Any = Any) -> Any:
    """Converts a result to plain JSON data (dict, list, str, int, float, bool, None).

    Dataclass fields and TypedDict keys whose value is None are left out. Raises
    TypeError for a value JSON cannot hold, ValueError for NaN and infinities.
    """
    tp, _ = unwrap_annotated(_strip_required(tp))
    if v is None or isinstance(v, (str, bool, int)):
        return v.value if isinstance(v, enum.Enum) else v
    if isinstance(v, float):
        if not math.isfinite(v):
            raise ValueError(f"{v} cannot be written as JSON")
        return v
    if isinstance(v, enum.Enum):
        return to_json(v.value)
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        hints = _hints(type(v))
        out = {}
        for f in dataclasses.fields(v):
            value = getattr(v, f.name)
            if value is not None:
                out[f.name] = to_json(value, hints.get(f.name, Any))
        return out
    if isinstance(v, collections.abc.Mapping):
        inner, _ = split_optional(tp)
        typed = is_object_type(inner) and typing.is_typeddict(inner)
        hints = _hints(inner) if typed else {}
        value_args = typing.get_args(inner) if typing.get_origin(inner) in (dict, collections.abc.Mapping) else ()
        out = {}
        for k, value in v.items():
            if not isinstance(k, str):
                raise TypeError(f"JSON object keys are strings, not {type(k).__name__} ({k!r})")
            if typed and value is None:
                continue
            out[k] = to_json(value, hints.get(k, value_args[1] if value_args else Any))
        return out
    if isinstance(v, (list, tuple, set, frozenset)):
        inner, _ = split_optional(tp)
        args = typing.get_args(inner)
        item = args[0] if len(args) == 1 else Any
        items = [to_json(x, item) for x in v]
        return sorted(items, key=repr) if isinstance(v, (set, frozenset)) else items
    raise TypeError(f"a {type(v).__name__} cannot be written as JSON")
