"""The official Python MCP SDK listening for tool list changes while moat hot-reloads.

usage: python python_listen.py URL TOKEN PLUGINS_DIR COMPONENT
Opens a 2025-11-25 session (notifications on its GET stream) and a 2026-07-28
`subscriptions/listen` stream, drops COMPONENT into PLUGINS_DIR, expects both to
hear `notifications/tools/list_changed` and the new tool to be listed, then deletes
it and expects both to hear again and the tool to be gone. Exits non-zero on the
first mismatch.
"""

import asyncio
import os
import shutil
import sys

import anyio
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import listen
from mcp.shared._httpx_utils import create_mcp_http_client

NAME = "python_added.wasm"
WAIT_S = 15


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


async def tool_names(session):
    return {t.name for t in (await session.list_tools()).tools}


async def main(url, token, plugins, component):
    legacy_heard = anyio.Event()
    heard = []

    async def on_message(message):
        if isinstance(message, types.ToolListChangedNotification):
            heard.append("tools")
            legacy_heard.set()

    headers = {"Authorization": f"Bearer {token}"}
    async with (
        create_mcp_http_client(headers=headers) as c1,
        streamable_http_client(url, http_client=c1) as (r1, w1),
        ClientSession(r1, w1, message_handler=on_message) as legacy,
        create_mcp_http_client(headers=headers) as c2,
        streamable_http_client(url, http_client=c2) as (r2, w2),
        ClientSession(r2, w2) as modern,
    ):
        init = await legacy.initialize()
        check(init.protocol_version == "2025-11-25", f"legacy protocol {init.protocol_version!r}")
        found = await modern.discover()
        check("2026-07-28" in found.supported_versions, f"discover: {found.supported_versions}")
        before = await tool_names(legacy)
        check("noop" not in before, f"noop listed before the drop: {sorted(before)}")
        # Give the legacy session's GET stream a moment to open (what is sent
        # before it opens is not replayed).
        await asyncio.sleep(1.0)

        async with listen(modern, tools_list_changed=True) as sub:
            events = aiter(sub)
            target = os.path.join(plugins, NAME)
            for step, expect in (("added", True), ("removed", False)):
                legacy_heard = anyio.Event()
                if expect:
                    # Copy beside it under a hidden name, then rename: an atomic drop.
                    tmp = os.path.join(plugins, "." + NAME + ".tmp")
                    shutil.copyfile(component, tmp)
                    os.rename(tmp, target)
                else:
                    os.remove(target)
                with anyio.fail_after(WAIT_S):
                    event = await anext(events)
                check("tool" in type(event).__name__.lower() or "tool" in repr(event).lower(),
                      f"2026-07-28 listener, {step}: unexpected event {event!r}")
                with anyio.fail_after(WAIT_S):
                    await legacy_heard.wait()
                names = await tool_names(legacy)
                check(("noop" in names) == expect, f"after the plugin was {step}: {sorted(names)}")
                stateless = await tool_names(modern)
                check(("noop" in stateless) == expect, f"2026-07-28 list after {step}: {sorted(stateless)}")
    check(heard == ["tools", "tools"], f"legacy session heard {heard}")
    print("ok: list_changed heard by a 2025-11-25 session and a 2026-07-28 listener, on add and on delete")


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
