"""The `moat:plugin` exports over the registry, for componentize-py.

The generated entry module of a build does `from moat._world import Tools,
Resources, Prompts`; componentize-py finds the export implementations there by
these names. This module needs the component bindings (`wit_world`), so it only
imports inside a build; everything it calls is in `moat` and runs natively.
"""

from __future__ import annotations

from typing import Any

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import types as wit

# Loaded now, while componentize-py pre-initialises, so the host calls in
# `moat` find them already imported.
from wit_world.imports import caller as _caller  # noqa: F401
from wit_world.imports import log as _log  # noqa: F401
from wit_world.imports import progress as _progress  # noqa: F401
from wit_world.imports import volume_stats as _volume_stats  # noqa: F401

import moat
from moat import Audio, CallError, Image, Text, registry

__all__ = ["Prompts", "Resources", "Tools"]


def _error(e: CallError) -> Err:
    if e.kind == "invalid-arguments":
        return Err(wit.CallError_InvalidArguments(e.message))
    if e.kind == "not-found":
        return Err(wit.CallError_NotFound(e.message))
    return Err(wit.CallError_Failed(e.message))


def _content(c: Any) -> Any:
    if isinstance(c, Text):
        return wit.Content_Text(c.text)
    if isinstance(c, Image):
        return wit.Content_Image(wit.Media(bytes(c.data), c.mime_type))
    if isinstance(c, Audio):
        return wit.Content_Audio(wit.Media(bytes(c.data), c.mime_type))
    raise TypeError(f"not a content item: {c!r}")


class Tools(exports.Tools):
    def list_tools(self) -> list[wit.Tool]:
        return [
            wit.Tool(
                name=t.name,
                title=t.title,
                description=t.description,
                input_schema=t.input_schema_json,
                output_schema=t.output_schema_json,
                annotations=wit.ToolAnnotations(
                    read_only=t.annotations.read_only,
                    destructive=t.annotations.destructive,
                    idempotent=t.annotations.idempotent,
                    open_world=t.annotations.open_world,
                ),
            )
            for t in registry.tools.values()
        ]

    def call_tool(self, name: str, arguments: str) -> wit.ToolOutput:
        try:
            out = registry.call_tool(name, arguments)
            return wit.ToolOutput(content=[_content(c) for c in out.content], structured=out.structured)
        except CallError as e:
            raise _error(e) from None
        except BaseException as e:  # a bad content item: never let an exception trap the instance
            raise _error(moat._as_call_error(e)) from None


class Resources(exports.Resources):
    def list_resources(self) -> list[wit.Resource]:
        return [
            wit.Resource(uri=r.uri, name=r.name, title=r.title, description=r.description, mime_type=r.mime_type)
            for r in registry.resources
            if not r.is_template
        ]

    def list_resource_templates(self) -> list[wit.ResourceTemplate]:
        return [
            wit.ResourceTemplate(
                uri_template=r.uri, name=r.name, title=r.title, description=r.description, mime_type=r.mime_type
            )
            for r in registry.resources
            if r.is_template
        ]

    def read_resource(self, uri: str) -> list[wit.ResourceContents]:
        try:
            r = registry.read_resource(uri)
        except CallError as e:
            raise _error(e) from None
        body = wit.ResourceBody_Text(r.body) if isinstance(r.body, str) else wit.ResourceBody_Blob(r.body)
        return [wit.ResourceContents(uri=r.uri, mime_type=r.mime_type, body=body)]


class Prompts(exports.Prompts):
    def list_prompts(self) -> list[wit.Prompt]:
        return [
            wit.Prompt(
                name=p.name,
                title=p.title,
                description=p.description,
                arguments=[wit.PromptArgument(a.name, a.description, a.required) for a in p.arguments],
            )
            for p in registry.prompts.values()
        ]

    def get_prompt(self, name: str, arguments: list[tuple[str, str]]) -> wit.PromptResult:
        try:
            r = registry.get_prompt(name, arguments)
            return wit.PromptResult(
                description=r.description,
                messages=[
                    wit.PromptMessage(
                        role=wit.Role.USER if role == "user" else wit.Role.ASSISTANT, content=_content(content)
                    )
                    for role, content in r.messages
                ],
            )
        except CallError as e:
            raise _error(e) from None
        except BaseException as e:
            raise _error(moat._as_call_error(e)) from None
