"""The official Python MCP SDK against a live `moat serve --dev`.

usage: python python_client.py URL TOKEN
Initializes a 2025-11-25 session, lists tools, calls two, checks a tool error
and an elicitation round trip, then checks that a request without a token gets
401 with a WWW-Authenticate challenge. Exits non-zero on the first mismatch.
"""

import asyncio
import sys

import httpx2
from mcp import types
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client


def check(cond, what):
    if not cond:
        raise SystemExit(f"FAILED: {what}")


async def answer_elicitation(context, params):
    return types.ElicitResult(action="accept", content={"username": "py", "email": "py@example.com"})


async def main(url: str, token: str) -> None:
    client = create_mcp_http_client(headers={"Authorization": f"Bearer {token}"})
    async with client, streamable_http_client(url, http_client=client) as (read, write):
        async with ClientSession(read, write, elicitation_callback=answer_elicitation) as session:
            init = await session.initialize()
            check(init.server_info.name == "moat", f"server name {init.server_info.name!r}")
            check(init.protocol_version == "2025-11-25", f"protocol {init.protocol_version!r}")
            tools = await session.list_tools()
            names = {t.name for t in tools.tools}
            check({"disk_usage", "test_simple_text"} <= names, f"tools listed: {sorted(names)}")
            usage = await session.call_tool("disk_usage", {"path": "/"})
            check(not usage.is_error, f"disk_usage failed: {usage.content}")
            s = usage.structured_content
            check(s is not None and s["total_bytes"] > 0 and s["used_bytes"] + s["free_bytes"] <= s["total_bytes"],
                  f"disk_usage structured content {s}")
            err = await session.call_tool("test_error_handling", {})
            check(err.is_error, "test_error_handling should be a tool error")
            asked = await session.call_tool("test_elicitation", {"message": "who are you?"})
            text = asked.content[0].text
            check("py@example.com" in text and "action=accept" in text, f"elicitation result {text!r}")

    async with httpx2.AsyncClient() as anon:
        r = await anon.post(url, json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
                            headers={"Accept": "application/json, text/event-stream"})
        check(r.status_code == 401, f"no token: status {r.status_code}")
        check("resource_metadata=" in r.headers.get("www-authenticate", ""), "401 without a Bearer challenge")
    print(f"ok: {len(names)} tools, disk_usage total {s['total_gb']} GiB, 401 without a token")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
