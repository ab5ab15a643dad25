"""The official Python MCP SDK against a fleet of moat replicas behind a round-robin proxy.

usage: python python_fleet.py URL TOKEN CALLS
Initializes one 2025-11-25 session, lists tools, makes CALLS tool calls
(alternating disk_usage and test_simple_text), checks a tool error and lists
again; with round-robin routing each request lands on the next replica, which
restores the session from the fleet's store. Then a 2026-07-28 client
discovers, lists and makes CALLS calls (each request on the next replica).
Last, checks that the ended session (DELETE, on whichever replica got it) is
gone on every replica. Exits non-zero on the first mismatch.
"""

import asyncio
import sys

import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


async def main(url: str, token: str, calls: int) -> None:
    session_ids = []

    async def remember(response):
        sid = response.headers.get("mcp-session-id")
        if sid:
            session_ids.append(sid)

    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    client.event_hooks["response"].append(remember)
    async with client, streamable_http_client(url, http_client=client) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "moat", f"server name {init.server_info.name!r}")
            check(init.protocol_version == "2025-11-25", f"protocol {init.protocol_version!r}")
            names = {t.name for t in (await session.list_tools()).tools}
            check({"disk_usage", "test_simple_text"} <= names, f"tools listed: {sorted(names)}")
            for i in range(calls):
                if i % 2 == 0:
                    r = await session.call_tool("disk_usage", {"path": "/"})
                    check(not r.is_error, f"call {i}: disk_usage failed: {r.content}")
                    check(r.structured_content["total_bytes"] > 0, f"call {i}: {r.structured_content}")
                else:
                    r = await session.call_tool("test_simple_text", {})
                    check(r.content[0].text == "This is a simple text response for testing.", f"call {i}: {r.content}")
            err = await session.call_tool("test_error_handling", {})
            check(err.is_error, "test_error_handling should be a tool error")
            again = {t.name for t in (await session.list_tools()).tools}
            check(again == names, f"the list changed between replicas: {sorted(again ^ names)}")

    # 2026-07-28: no session; every request stands alone, on the next replica.
    modern_client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with modern_client, streamable_http_client(url, http_client=modern_client) as (read, write):
        async with ClientSession(read, write) as modern:
            found = await modern.discover()
            check("2026-07-28" in found.supported_versions, f"discover: {found.supported_versions}")
            names = {t.name for t in (await modern.list_tools()).tools}
            check("test_simple_text" in names, f"2026-07-28 tools: {sorted(names)}")
            for i in range(calls):
                r = await modern.call_tool("test_simple_text", {})
                check(r.content[0].text == "This is a simple text response for testing.", f"2026 call {i}: {r.content}")

    check(session_ids, "the server never named a session")
    sid = session_ids[0]
    # The SDK ended the session on exit (DELETE, on one replica); the others
    # hear of it through Redis and drop their copies.
    await asyncio.sleep(0.5)
    async with httpx2.AsyncClient() as plain:
        for _ in range(3):
            r = await plain.post(
                url,
                json={"jsonrpc": "2.0", "id": 9, "method": "tools/list"},
                headers={
                    "Authorization": f"Bearer {token}",
                    "Accept": "application/json, text/event-stream",
                    "Mcp-Session-Id": sid,
                    "MCP-Protocol-Version": "2025-11-25",
                },
            )
            check(r.status_code == 404, f"the ended session answered {r.status_code} on some replica")
    print(f"ok: one 2025-11-25 session ({calls} calls, 2 lists) and a 2026-07-28 client ({calls} calls) across the replicas; the session ended everywhere")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
