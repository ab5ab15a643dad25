"""Write moat tool plugins as plain, typed Python functions.

    import moat
    from dataclasses import dataclass

    @dataclass
    class Greeting:
        text: str

    @moat.tool(read_only=True)
    def greet(name: str) -> Greeting:
        \"\"\"Greets someone by name.

        Args:
            name: Who to greet.
        \"\"\"
        return Greeting(f"Hello, {name}!")

Build with `moat build app.py -o app.wasm`. The decorators register the
functions (at build time: componentize-py imports the module while it
pre-initialises the component) and return them unchanged, so unit tests can call
them directly. Schemas come from the type hints, descriptions from docstrings.

This module imports natively without the component bindings; only the host
calls (`log`, `progress`, `volume_stats`, `caller`) need the component, or a
stand-in installed with `set_host` (see `RecordingHost`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
import traceback
import typing
from typing import Any, Callable, Literal, TypeVar, overload

from . import _schema
from ._schema import SchemaBuilder, from_json, is_object_type, parse_doc, split_optional, to_json

__version__ = "0.1.2"

__all__ = [
    "Audio",
    "Caller",
    "Image",
    "InvalidArguments",
    "NotFound",
    "RecordingHost",
    "Text",
    "ToolError",
    "VolumeStats",
    "VolumeStatsError",
    "caller",
    "log",
    "progress",
    "prompt",
    "resource",
    "set_host",
    "tool",
    "volume_stats",
]

F = TypeVar("F", bound=Callable[..., Any])

# --------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------


class ToolError(Exception):
    """The tool ran and failed: the message is shown to the model as a tool error."""


class InvalidArguments(Exception):
    """The arguments were rejected: the message should name the field."""


class NotFound(Exception):
    """No such thing (e.g. no resource behind a URI that matches a template)."""


class VolumeStatsError(Exception):
    """`volume_stats` failed. `kind` is "not-granted", "not-found" or "io";
    the message is the host's."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


class CallError(Exception):
    """How a call ended without a result, as the host receives it.

    `kind` is "failed", "invalid-arguments" or "not-found". Raised by the
    dispatch functions (`call_tool`, `read_resource`, `get_prompt`); authors
    raise ToolError, InvalidArguments or NotFound instead.
    """

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message

    def __repr__(self) -> str:
        return f"CallError({self.kind!r}, {self.message!r})"


def _as_call_error(e: BaseException) -> CallError:
    if isinstance(e, CallError):
        return e
    if isinstance(e, ToolError):
        return CallError("failed", str(e))
    if isinstance(e, (InvalidArguments, _schema.ArgumentError)):
        return CallError("invalid-arguments", str(e))
    if isinstance(e, NotFound):
        return CallError("not-found", str(e))
    text = str(e)
    name = type(e).__name__
    return CallError("failed", f"{name}: {text}" if text else name)


# --------------------------------------------------------------------------
# Content
# --------------------------------------------------------------------------


@dataclasses.dataclass
class Text:
    """A text item of a tool result or prompt message."""

    text: str


@dataclasses.dataclass
class Image:
    """An image item: raw bytes and their MIME type (e.g. "image/png")."""

    data: bytes
    mime_type: str


@dataclasses.dataclass
class Audio:
    """An audio item: raw bytes and their MIME type (e.g. "audio/wav")."""

    data: bytes
    mime_type: str


Content = Text | Image | Audio


@dataclasses.dataclass
class ToolResult:
    """What a tool call produced, before it is handed to the host."""

    content: list[Content]
    #: The structured result as JSON text, for a tool with an output schema.
    structured: str | None = None


@dataclasses.dataclass
class ResourceResult:
    uri: str
    mime_type: str | None
    #: str for a text resource, bytes for a blob.
    body: str | bytes


@dataclasses.dataclass
class PromptResult:
    description: str | None
    #: (role, content) pairs; role is "user" or "assistant".
    messages: list[tuple[str, Content]]


# --------------------------------------------------------------------------
# Host calls
# --------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class VolumeStats:
    """Size of the filesystem holding a granted path, in bytes."""

    total_bytes: int
    #: Free, including blocks reserved for the superuser.
    free_bytes: int
    #: Available to unprivileged users.
    available_bytes: int


@dataclasses.dataclass(frozen=True)
class Caller:
    """The verified identity behind the call (never the token)."""

    subject: str
    scopes: list[str]
    client_id: str | None = None


LogLevel = Literal["debug", "info", "notice", "warning", "error"]
_LEVELS = ("debug", "info", "notice", "warning", "error")


class _WitHost:
    """The real host, through the component's imports (componentize-py bindings)."""

    def log(self, level: str, message: str) -> None:
        from wit_world.imports import log as wit_log

        wit_log.log(wit_log.Level[level.upper()], message)

    def progress(self, progress: float, total: float | None, message: str | None) -> None:
        from wit_world.imports import progress as wit_progress

        wit_progress.report(progress, total, message)

    def volume_stats(self, path: str) -> VolumeStats:
        from componentize_py_types import Err
        from wit_world.imports import volume_stats as wit_stats

        try:
            s = wit_stats.stat(path)
        except Err as e:
            err = e.value
            kind = {
                "StatsError_NotGranted": "not-granted",
                "StatsError_NotFound": "not-found",
                "StatsError_Io": "io",
            }.get(type(err).__name__, "io")
            raise VolumeStatsError(kind, getattr(err, "value", str(err))) from None
        return VolumeStats(s.total_bytes, s.free_bytes, s.available_bytes)

    def caller(self) -> Caller | None:
        from wit_world.imports import caller as wit_caller

        i = wit_caller.identity()
        return None if i is None else Caller(i.subject, list(i.scopes), i.client_id)


class RecordingHost:
    """A stand-in host for native unit tests: records logs and progress.

        host = moat.RecordingHost(caller=moat.Caller("alice", ["read"]))
        moat.set_host(host)
        my_tool("x")
        assert host.logs == [("info", "did x")]

    `volume_stats` answers from `stats` (a dict from path to VolumeStats or to
    a VolumeStatsError to raise); other paths raise VolumeStatsError("not-granted").
    """

    def __init__(
        self,
        caller: Caller | None = None,
        stats: dict[str, VolumeStats | VolumeStatsError] | None = None,
    ) -> None:
        self.logs: list[tuple[str, str]] = []
        self.progress_reports: list[tuple[float, float | None, str | None]] = []
        self._caller = caller
        self._stats = dict(stats or {})

    def log(self, level: str, message: str) -> None:
        self.logs.append((level, message))

    def progress(self, progress: float, total: float | None, message: str | None) -> None:
        self.progress_reports.append((progress, total, message))

    def volume_stats(self, path: str) -> VolumeStats:
        s = self._stats.get(path)
        if isinstance(s, VolumeStatsError):
            raise s
        if s is None:
            raise VolumeStatsError("not-granted", f"{path} is not inside a granted directory")
        return s

    def caller(self) -> Caller | None:
        return self._caller


_host: Any = None


def set_host(host: Any) -> None:
    """Replaces the host the host calls go to (None: the component's imports).

    For native unit tests; inside a component the default is the real host.
    """
    global _host
    _host = host


def _the_host(what: str) -> Any:
    global _host
    if _host is None:
        try:
            import wit_world.imports  # noqa: F401  (present only inside a component)
        except ImportError:
            raise RuntimeError(
                f"moat.{what}() calls the moat host, and this is not running inside a moat component; "
                "in native tests install a stand-in first: moat.set_host(moat.RecordingHost())"
            ) from None
        _host = _WitHost()
    return _host


def log(message: str, level: LogLevel = "info") -> None:
    """Sends a log message to the host (and on to MCP clients that asked for logs).

    `level` is "debug", "info", "notice", "warning" or "error". Messages are cut at 16 KiB.
    """
    level = level.lower()  # type: ignore[assignment]
    if level == "warn":
        level = "warning"
    if level not in _LEVELS:
        raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
    _the_host("log").log(level, str(message))


def progress(progress: float, total: float | None = None, message: str | None = None) -> None:
    """Reports progress of the tool call in flight; `progress` should rise with each report."""
    _the_host("progress").progress(
        float(progress), None if total is None else float(total), None if message is None else str(message)
    )


def volume_stats(path: str) -> VolumeStats:
    """Size of the filesystem holding `path`, a guest path inside a granted directory.

    Raises VolumeStatsError with the host's message when the path is not granted,
    does not exist or cannot be read.
    """
    return _the_host("volume_stats").volume_stats(path)


def caller() -> Caller | None:
    """Who is calling; None when moat serves without auth (stdio, `moat call`)."""
    return _the_host("caller").caller()


# --------------------------------------------------------------------------
# The registry
# --------------------------------------------------------------------------

_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")
_URI_CHARS = re.compile(r"^[A-Za-z0-9\-._~:/?#\[\]@!$&'()*+,;=%]+$")
_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:")


@dataclasses.dataclass
class Annotations:
    read_only: bool = False
    destructive: bool = False
    idempotent: bool = False
    open_world: bool = False


@dataclasses.dataclass
class ToolDef:
    name: str
    title: str | None
    description: str
    annotations: Annotations
    input_schema: dict[str, Any]
    output_schema: dict[str, Any] | None
    fn: Callable[..., Any]
    fields: list[_schema.Field]
    returns: Any
    #: The schemas as the host receives them (serialised once, at build time).
    input_schema_json: str = ""
    output_schema_json: str | None = None


@dataclasses.dataclass
class ResourceDef:
    uri: str
    name: str
    title: str | None
    description: str | None
    mime_type: str | None
    fn: Callable[..., Any]
    is_template: bool
    #: Template variables, in order, and the compiled matcher.
    variables: list[str] = dataclasses.field(default_factory=list)
    pattern: re.Pattern[str] | None = None
    wants_uri: bool = False


@dataclasses.dataclass
class PromptArgument:
    name: str
    description: str | None
    required: bool


@dataclasses.dataclass
class PromptDef:
    name: str
    title: str | None
    description: str | None
    arguments: list[PromptArgument]
    fn: Callable[..., Any]
    #: Optional arguments without a default: passed as None when absent.
    none_if_missing: list[str] = dataclasses.field(default_factory=list)


class Registry:
    """What the plugin offers; the decorators add to the module's `registry`."""

    def __init__(self) -> None:
        self.tools: dict[str, ToolDef] = {}
        self.resources: list[ResourceDef] = []
        self.prompts: dict[str, PromptDef] = {}

    def clear(self) -> None:
        self.tools.clear()
        self.resources.clear()
        self.prompts.clear()

    # ---- registration -----------------------------------------------------

    def add_tool(self, t: ToolDef) -> None:
        _check_unique(t.name, self.tools, "tool")
        self.tools[t.name] = t

    def add_resource(self, r: ResourceDef) -> None:
        for other in self.resources:
            if other.uri == r.uri:
                raise ValueError(f"two resources have the URI {r.uri!r}")
        self.resources.append(r)

    def add_prompt(self, p: PromptDef) -> None:
        _check_unique(p.name, self.prompts, "prompt")
        self.prompts[p.name] = p

    # ---- dispatch -----------------------------------------------------------

    def call_tool(self, name: str, arguments: str) -> ToolResult:
        """Runs a tool with JSON arguments. Raises CallError."""
        t = self.tools.get(name)
        if t is None:
            raise CallError("not-found", f"no tool named `{name}`")
        try:
            kwargs = _parse_arguments(t.fields, arguments)
        except BaseException as e:
            raise _as_call_error(e) from None
        try:
            value = t.fn(**kwargs)
        except BaseException as e:
            raise _failure(e, f"tool `{name}`") from None
        try:
            return _tool_result(t, value)
        except BaseException as e:
            raise _as_call_error(e) from None

    def read_resource(self, uri: str) -> ResourceResult:
        """Reads a resource: fixed URIs first, then templates. Raises CallError."""
        ordered = [r for r in self.resources if not r.is_template] + [r for r in self.resources if r.is_template]
        for r in ordered:
            if r.is_template:
                assert r.pattern is not None
                m = r.pattern.fullmatch(uri)
                if m is None:
                    continue
                kwargs: dict[str, Any] = dict(zip(r.variables, m.groups()))
            elif r.uri == uri:
                kwargs = {}
            else:
                continue
            if r.wants_uri:
                kwargs["uri"] = uri
            try:
                value = r.fn(**kwargs)
            except BaseException as e:
                raise _failure(e, f"resource `{r.name}`") from None
            try:
                body = _resource_body(value)
            except BaseException as e:
                raise _as_call_error(e) from None
            return ResourceResult(uri, r.mime_type, body)
        raise CallError("not-found", f"no resource at `{uri}`")

    def get_prompt(self, name: str, arguments: list[tuple[str, str]] | dict[str, str]) -> PromptResult:
        """Fills in a prompt. Raises CallError."""
        p = self.prompts.get(name)
        if p is None:
            raise CallError("not-found", f"no prompt named `{name}`")
        given = dict(arguments)
        known = {a.name for a in p.arguments}
        for key in given:
            if key not in known:
                raise CallError("invalid-arguments", f"unknown argument `{key}`")
        for a in p.arguments:
            if a.required and a.name not in given:
                raise CallError("invalid-arguments", f"missing required argument `{a.name}`")
        kwargs: dict[str, Any] = {n: None for n in p.none_if_missing}
        kwargs.update(given)
        try:
            value = p.fn(**kwargs)
        except BaseException as e:
            raise _failure(e, f"prompt `{name}`") from None
        try:
            return PromptResult(None, _prompt_messages(value))
        except BaseException as e:
            raise _as_call_error(e) from None


registry = Registry()


def _check_unique(name: str, existing: dict[str, Any], what: str) -> None:
    for other in existing:
        if other.lower() == name.lower():
            same = "twice" if other == name else f"as {other!r} and {name!r}, which differ only in case"
            raise ValueError(f"{what} name {name!r} is declared {same}")


def _failure(e: BaseException, what: str) -> CallError:
    """A CallError for an exception out of author code; unexpected ones are logged with their traceback."""
    err = _as_call_error(e)
    expected = isinstance(e, (ToolError, InvalidArguments, NotFound, CallError))
    if not expected:
        try:
            text = "".join(traceback.format_exception(e))
            _the_host("log").log("debug", f"{what} raised {text[-8000:]}")
        except BaseException:
            pass  # natively without a stand-in host: nowhere to log
    return err


def _parse_arguments(fields: list[_schema.Field], arguments: str) -> dict[str, Any]:
    text = arguments.strip() if arguments else ""
    if not text:
        value: Any = {}
    else:
        try:
            value = json.loads(text)
        except ValueError as e:
            raise InvalidArguments(f"the arguments are not JSON: {e}") from None
    if value is None:
        value = {}
    if not isinstance(value, dict):
        raise InvalidArguments("the arguments must be a JSON object")
    return _schema.convert_fields(fields, value, arguments=True)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)


def _content_item(v: Any) -> Content | None:
    return v if isinstance(v, (Text, Image, Audio)) else None


def _tool_result(t: ToolDef, value: Any) -> ToolResult:
    if t.output_schema is not None:
        data = to_json(value, t.returns)
        if not isinstance(data, dict):
            raise ToolError(f"tool `{t.name}` declares a structured result but returned {type(value).__name__}")
        # The host adds the JSON text item for clients without structured
        # output, from these very bytes: the JSON is written once.
        return ToolResult([], _dumps(data))
    if value is None:
        return ToolResult([])
    if isinstance(value, str):
        return ToolResult([Text(value)])
    if _content_item(value) is not None:
        return ToolResult([value])
    if isinstance(value, ToolResult):
        return value
    if isinstance(value, list) and value and all(_content_item(v) is not None for v in value):
        return ToolResult(list(value))
    return ToolResult([Text(_dumps(to_json(value, t.returns)))])


def _resource_body(value: Any) -> str | bytes:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value)
    return json.dumps(to_json(value), ensure_ascii=False, indent=2, allow_nan=False)


def _prompt_messages(value: Any) -> list[tuple[str, Content]]:
    if isinstance(value, str):
        return [("user", Text(value))]
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"a prompt returns a str or a list of (role, text) pairs, not {type(value).__name__}")
    messages: list[tuple[str, Content]] = []
    for item in value:
        if not (isinstance(item, (tuple, list)) and len(item) == 2):
            raise TypeError(f"a prompt message is a (role, text) pair, not {item!r}")
        role, content = item
        role = getattr(role, "value", role)
        if role not in ("user", "assistant"):
            raise ValueError(f"a prompt message's role is 'user' or 'assistant', not {role!r}")
        if isinstance(content, str):
            content = Text(content)
        elif _content_item(content) is None:
            raise TypeError(f"a prompt message holds a str, Text, Image or Audio, not {type(content).__name__}")
        messages.append((role, content))
    return messages


# --------------------------------------------------------------------------
# Decorators
# --------------------------------------------------------------------------


def _check_name(name: str, what: str, limit: int = 128) -> None:
    if not (isinstance(name, str) and 1 <= len(name) <= limit and _NAME.match(name)):
        raise ValueError(f"{what} name {name!r} must be 1 to {limit} characters of A-Z a-z 0-9 _ - .")


def _check_plain(fn: Any, what: str) -> None:
    if not callable(fn):
        raise TypeError(f"@{what} decorates a function, not {fn!r}; options go by keyword, e.g. @{what}(name=...)")
    if inspect.iscoroutinefunction(fn) or inspect.isasyncgenfunction(fn):
        raise TypeError(f"@{what}: {fn.__qualname__} is async; moat calls plain (synchronous) functions")


def _signature_fields(fn: Callable[..., Any], doc: _schema.Doc, what: str) -> list[_schema.Field]:
    """The parameters of `fn` as schema fields (type hints, defaults, `Args:` descriptions)."""
    try:
        hints = typing.get_type_hints(fn, include_extras=True)
    except Exception as e:
        raise TypeError(f"@{what} {fn.__qualname__}: cannot read the type hints: {e}") from None
    fields = []
    for p in inspect.signature(fn).parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
            raise TypeError(
                f"@{what} {fn.__qualname__}: parameter `{p.name}` must be a plain named parameter "
                "(no *args, **kwargs or positional-only)"
            )
        tp = hints.get(p.name, Any)
        _, annotated = _schema.unwrap_annotated(tp)
        f = _schema.Field(p.name, tp, annotated or doc.params.get(p.name))
        if p.default is not p.empty:
            f.has_default, f.default = True, p.default
        fields.append(f)
    return fields


def _description(explicit: str | None, doc: _schema.Doc) -> str | None:
    text = explicit if explicit is not None else doc.summary
    return (text or "").strip() or None


@overload
def tool(fn: F, /) -> F: ...
@overload
def tool(
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
) -> Callable[[F], F]: ...


def tool(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
    read_only: bool = False,
    destructive: bool = False,
    idempotent: bool = False,
    open_world: bool = False,
) -> Any:
    """Declares a tool: `@moat.tool` or `@moat.tool(read_only=True, ...)`.

    The parameters (with type hints) are the arguments; the first paragraph of
    the docstring is the description and its `Args:` section describes the
    parameters. A dataclass or TypedDict return annotation gives the tool an
    output schema and a structured result.
    """

    def register(f: F) -> F:
        _check_plain(f, "tool")
        tool_name = name if name is not None else f.__name__
        _check_name(tool_name, "tool")
        if read_only and destructive:
            raise ValueError(f"tool {tool_name!r} cannot be both read_only and destructive")
        doc = parse_doc(f.__doc__)
        desc = _description(description, doc)
        if not desc:
            raise ValueError(
                f"tool {tool_name!r} needs a description: give {f.__qualname__} a docstring "
                "(its first paragraph is shown to the model) or pass description=..."
            )
        fields = _signature_fields(f, doc, "tool")
        input_schema = SchemaBuilder(for_input=True).root(fields)
        try:
            returns = typing.get_type_hints(f, include_extras=True).get("return", Any)
        except Exception:
            returns = Any
        bare, optional = split_optional(returns)
        bare, _ = _schema.unwrap_annotated(bare)
        output_schema = None
        if is_object_type(bare) and bare not in (Text, Image, Audio, ToolResult):
            if optional:
                raise TypeError(f"tool {tool_name!r}: a structured result cannot be None; drop the Optional")
            output_schema = SchemaBuilder(for_input=False).root_object(bare)
        t = ToolDef(
            name=tool_name,
            title=title,
            description=desc,
            annotations=Annotations(read_only, destructive, idempotent, open_world),
            input_schema=input_schema,
            output_schema=output_schema,
            fn=f,
            fields=fields,
            returns=returns,
            input_schema_json=_dumps(input_schema),
            output_schema_json=None if output_schema is None else _dumps(output_schema),
        )
        registry.add_tool(t)
        return f

    if fn is not None:
        return register(fn)
    return register


_EXPR = re.compile(r"\{([^{}]*)\}")


def _compile_template(template: str) -> tuple[list[str], re.Pattern[str]]:
    """`{name}` = one or more characters of one path segment, `{+name}` = one or more of any.

    When a URI splits more than one way, each variable takes as much as it can,
    left to right (as the host routes).
    """
    if not 1 <= len(template.encode()) <= 256:
        raise ValueError(f"resource template {template!r} must be 1 to 256 bytes long")
    names: list[str] = []
    parts: list[str] = []
    pos = 0
    for m in _EXPR.finditer(template):
        literal = template[pos : m.start()]
        if "{" in literal or "}" in literal:
            raise ValueError(f"resource template {template!r} has an unmatched brace")
        parts.append(re.escape(literal))
        expr = m.group(1)
        greedy = expr.startswith("+")
        var = expr[1:] if greedy else expr
        if not var.isidentifier():
            raise ValueError(
                f"resource template {template!r}: `{{{expr}}}` is not supported; moat routes "
                "`{name}` and `{+name}` where name is a Python identifier"
            )
        if var in names:
            raise ValueError(f"resource template {template!r} uses `{var}` twice")
        names.append(var)
        parts.append("(.+)" if greedy else "([^/]+)")
        pos = m.end()
    rest = template[pos:]
    if "{" in rest or "}" in rest:
        raise ValueError(f"resource template {template!r} has an unmatched brace")
    parts.append(re.escape(rest))
    if len(names) > 16:
        raise ValueError(f"resource template {template!r} has more than 16 expressions")
    literal_text = _EXPR.sub("", template)
    if literal_text and not _URI_CHARS.match(literal_text):
        raise ValueError(f"resource template {template!r} holds characters a URI cannot hold unescaped")
    return names, re.compile("".join(parts), re.DOTALL)


def resource(
    uri: str | None = None,
    /,
    *,
    name: str | None = None,
    mime_type: str | None = None,
    title: str | None = None,
    description: str | None = None,
    **kwargs: Any,
) -> Callable[[F], F]:
    """Declares a resource: `@moat.resource(uri="config://limits", mime_type="application/json")`.

    A URI with `{var}` (one path segment) or `{+var}` (anything) is a template:
    each variable is passed to the function as a keyword argument. A parameter
    named `uri` receives the full URI. Return str for text, bytes for a blob.
    """
    if callable(uri):
        raise TypeError("@resource needs a URI: @moat.resource(uri=\"scheme://...\")")
    if "uri" in kwargs:
        if uri is not None:
            raise TypeError("@resource: the URI is given twice")
        uri = kwargs.pop("uri")
    if kwargs:
        raise TypeError(f"@resource got unknown options: {', '.join(sorted(kwargs))}")
    if not isinstance(uri, str) or not uri:
        raise TypeError("@resource needs a URI: @moat.resource(uri=\"scheme://...\")")
    the_uri: str = uri

    def register(f: F) -> F:
        _check_plain(f, "resource")
        res_name = name if name is not None else f.__name__
        if not res_name or len(res_name.encode()) > 256:
            raise ValueError(f"resource name {res_name!r} must be 1 to 256 bytes long")
        if not _SCHEME.match(the_uri):
            raise ValueError(f"resource URI {the_uri!r} must be absolute (scheme:...)")
        doc = parse_doc(f.__doc__)
        params = inspect.signature(f).parameters
        is_template = "{" in the_uri or "}" in the_uri
        r = ResourceDef(
            uri=the_uri,
            name=res_name,
            title=title,
            description=_description(description, doc),
            mime_type=mime_type,
            fn=f,
            is_template=is_template,
        )
        if is_template:
            r.variables, r.pattern = _compile_template(the_uri)
        else:
            if len(the_uri) > 2048 or not _URI_CHARS.match(the_uri):
                raise ValueError(f"resource URI {the_uri!r} must be at most 2048 URI characters (percent-encode the rest)")
        for p in params.values():
            if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD, p.POSITIONAL_ONLY):
                raise TypeError(f"@resource {f.__qualname__}: parameter `{p.name}` must be a plain named parameter")
            if p.name in r.variables:
                continue
            if p.name == "uri":
                r.wants_uri = True
            elif p.default is p.empty:
                raise TypeError(
                    f"@resource {f.__qualname__}: parameter `{p.name}` is not a variable of {the_uri!r}"
                )
        for var in r.variables:
            if var not in params:
                raise TypeError(f"@resource {f.__qualname__}: {the_uri!r} has `{var}`; add a parameter `{var}: str`")
        registry.add_resource(r)
        return f

    return register


@overload
def prompt(fn: F, /) -> F: ...
@overload
def prompt(
    *, name: str | None = None, title: str | None = None, description: str | None = None
) -> Callable[[F], F]: ...


def prompt(
    fn: Any = None,
    /,
    *,
    name: str | None = None,
    title: str | None = None,
    description: str | None = None,
) -> Any:
    """Declares a prompt: `@moat.prompt` or `@moat.prompt(name=..., title=...)`.

    Its parameters are str arguments, required unless they have a default; the
    docstring's `Args:` section describes them. Return a str (one user message)
    or a list of (role, text) pairs, role "user" or "assistant".
    """

    def register(f: F) -> F:
        _check_plain(f, "prompt")
        prompt_name = name if name is not None else f.__name__
        _check_name(prompt_name, "prompt")
        doc = parse_doc(f.__doc__)
        arguments = []
        none_if_missing = []
        for field in _signature_fields(f, doc, "prompt"):
            inner, optional = split_optional(field.type)
            if inner not in (str, Any):
                raise TypeError(
                    f"@prompt {f.__qualname__}: argument `{field.name}` must be a str (prompt arguments are strings)"
                )
            _check_name(field.name, "prompt argument", 64)
            arguments.append(PromptArgument(field.name, field.description, not (field.has_default or optional)))
            if optional and not field.has_default:
                none_if_missing.append(field.name)
        p = PromptDef(prompt_name, title, _description(description, doc), arguments, f, none_if_missing)
        registry.add_prompt(p)
        return f

    if fn is not None:
        return register(fn)
    return register
