"""The official Python MCP SDK (mcp==2.3.0) doing the full OAuth flow against
`moat serve --dev`: no pasted token, only discovery.

usage: python python_oauth.py URL [TOOL]

On the first 401 from POST URL, mcp.client.auth.OAuthClientProvider discovers
the protected-resource metadata (RFC 9728) and the authorization-server
metadata (RFC 8414), registers a client dynamically (RFC 7591), sends us to the
authorization endpoint with PKCE S256, exchanges the code at the token endpoint
and retries the request with the bearer token. Here the "browser" is headless:
the redirect handler GETs the authorization URL without following redirects and
keeps the Location, and the callback handler reads code, state and iss from it.

Then it initializes a session (2025-11-25 handshake), lists tools, calls TOOL
with {} if given, and prints one JSON line:
  {"tools": [...], "call": "<text of first content>"|null, "registered_client_id": "...", "scope": ...}
Exits non-zero with a message on stderr on any failure, or after 30 s overall.
Each HTTP request the SDK makes is traced on stderr (method, URL without query, status).
"""

import asyncio
import json
import os
import sys
from urllib.parse import parse_qs, urlsplit

import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

OVERALL_TIMEOUT = 30.0
# Never contacted: the redirect handler reads the code out of the Location header.
REDIRECT_URI = "http://127.0.0.1:33418/callback"
# "none" (public client + PKCE) unless overridden: client_secret_post / client_secret_basic.
AUTH_METHOD = os.environ.get("MOAT_OAUTH_AUTH_METHOD", "none")


class Failure(Exception):
    pass


class InMemoryTokenStorage(TokenStorage):
    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


def trace(line: str) -> None:
    print(f"[python_oauth] {line}", file=sys.stderr, flush=True)


def strip_query(url: httpx2.URL) -> str:
    return str(url.copy_with(query=None, fragment=None))


async def on_request(request: httpx2.Request) -> None:
    trace(f"-> {request.method} {strip_query(request.url)}")


async def on_response(response: httpx2.Response) -> None:
    trace(f"<- {response.status_code} {response.request.method} {strip_query(response.request.url)}")


async def run(url: str, tool: str | None) -> dict:
    storage = InMemoryTokenStorage()
    seen: dict[str, str] = {}

    async def redirect_handler(authorization_url: str) -> None:
        seen["authorize"] = authorization_url
        trace(f"authorize: {authorization_url}")
        async with httpx2.AsyncClient(follow_redirects=False, timeout=10.0) as browser:
            r = await browser.get(authorization_url)
        location = r.headers.get("location")
        if r.status_code not in (301, 302, 303, 307, 308) or not location:
            raise Failure(f"authorization endpoint answered {r.status_code} without a redirect: {r.text[:300]}")
        trace(f"authorize redirected ({r.status_code}) to {location}")
        seen["location"] = location

    async def callback_handler() -> AuthorizationCodeResult:
        location = seen.get("location")
        if location is None:
            raise Failure("callback_handler called before the authorization redirect")
        if not location.startswith(REDIRECT_URI):
            raise Failure(f"authorization redirected to {location!r}, not to the registered {REDIRECT_URI}")
        query = {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}
        if "error" in query:
            raise Failure(f"authorization error {query['error']!r}: {query.get('error_description', '')}")
        if "code" not in query:
            raise Failure(f"authorization redirect carries no code: {location}")
        # The SDK checks state against what it sent, and iss (RFC 9207) against the AS metadata issuer.
        return AuthorizationCodeResult(code=query["code"], state=query.get("state"), iss=query.get("iss"))

    oauth = OAuthClientProvider(
        server_url=url,
        client_metadata=OAuthClientMetadata(
            client_name="moat python oauth test",
            redirect_uris=[REDIRECT_URI],
            token_endpoint_auth_method=AUTH_METHOD,
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
    )

    http = httpx2.AsyncClient(
        auth=oauth,
        timeout=httpx2.Timeout(OVERALL_TIMEOUT),
        event_hooks={"request": [on_request], "response": [on_response]},
    )
    async with http, streamable_http_client(url, http_client=http) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            listed = await session.list_tools()
            names = [t.name for t in listed.tools]
            call_text = None
            if tool is not None:
                if tool not in names:
                    raise Failure(f"tool {tool!r} not listed; tools: {names}")
                result = await session.call_tool(tool, {})
                if result.is_error:
                    raise Failure(f"tool {tool!r} returned an error: {result.content}")
                first = result.content[0] if result.content else None
                call_text = getattr(first, "text", None) if first is not None else None
                if call_text is None and first is not None:
                    call_text = first.model_dump_json()

    if storage.client_info is None or storage.tokens is None:
        raise Failure("the server never challenged: no client was registered and no token obtained")
    if "authorize" not in seen:
        raise Failure("the authorization endpoint was never visited")
    return {
        "tools": names,
        "call": call_text,
        "registered_client_id": storage.client_info.client_id,
        "scope": storage.tokens.scope,
    }


def describe(exc: BaseException) -> str:
    """The innermost, most telling exceptions of a (possibly nested) ExceptionGroup."""
    if isinstance(exc, BaseExceptionGroup):
        inner = [describe(e) for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        return "; ".join(inner) or repr(exc)
    text = f"{type(exc).__name__}: {exc}"
    if exc.__cause__ is not None:
        text += f" (caused by {describe(exc.__cause__)})"
    return text


def main() -> int:
    if len(sys.argv) not in (2, 3):
        print("usage: python python_oauth.py URL [TOOL]", file=sys.stderr)
        return 2
    url, tool = sys.argv[1], (sys.argv[2] if len(sys.argv) == 3 else None)
    try:
        out = asyncio.run(asyncio.wait_for(run(url, tool), OVERALL_TIMEOUT))
    except (TimeoutError, asyncio.TimeoutError):
        print(f"FAILED: timed out after {OVERALL_TIMEOUT:.0f} s", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BaseException as e:  # noqa: BLE001 - report anything, including ExceptionGroups
        print(f"FAILED: {describe(e)}", file=sys.stderr)
        return 1
    print(f"ok: signed in by OAuth discovery as client {out['registered_client_id']}, {len(out['tools'])} tools")
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
