// moat as an OAuth 2.1 protected resource, driven with tokens from a real
// authorization server (idp.mjs, npm `oidc-provider`).
// usage: MOAT_IDP_SECRET_<CLIENT>=... node idp_flow.mjs MOAT_URL IDP_URL RESOURCE
const [moat, idp, resource] = process.argv.slice(2);
function check(cond, what) {
  if (!cond) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
}

async function token(client, scope, aud = resource) {
  const secret = process.env[`MOAT_IDP_SECRET_${client.toUpperCase()}`];
  const r = await fetch(`${idp}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${client}:${secret}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: aud, scope }),
  });
  const body = await r.json();
  check(r.ok && body.access_token, `token for ${client}: ${JSON.stringify(body)}`);
  return body.access_token;
}

let id = 0;
async function mcp(tok, method, params = {}) {
  const headers = {
    authorization: `Bearer ${tok}`,
    'content-type': 'application/json',
    accept: 'application/json, text/event-stream',
    'mcp-protocol-version': '2026-07-28',
    'mcp-method': method,
  };
  if (params.name) headers['mcp-name'] = params.name;
  const body = {
    jsonrpc: '2.0',
    id: ++id,
    method,
    params: {
      ...params,
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
    },
  };
  const r = await fetch(moat, { method: 'POST', headers, body: JSON.stringify(body) });
  const text = await r.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {}
  return { status: r.status, headers: r.headers, json };
}

const names = (r) => r.json.result.tools.map((t) => t.name);
const cleanup = { name: 'cleanup', arguments: { path: '/victim', older_than_days: 0, dry_run: true } };

// A read-only client sees and calls only read tools.
const reader = await token('reader', 'tools:read');
let r = await mcp(reader, 'tools/list');
check(r.status === 200 && names(r).includes('disk_usage') && !names(r).includes('cleanup'), `reader list: ${r.status} ${JSON.stringify(r.json)}`);
r = await mcp(reader, 'tools/call', { name: 'disk_usage', arguments: { path: '/' } });
check(r.status === 200 && r.json.result.structuredContent.total_bytes > 0, `reader disk_usage: ${JSON.stringify(r.json)}`);
r = await mcp(reader, 'tools/call', cleanup);
check(r.status === 403 && /insufficient_scope/.test(r.headers.get('www-authenticate')), `reader cleanup: ${r.status}`);

// A write client can run cleanup.
const writer = await token('writer', 'tools:read tools:write');
r = await mcp(writer, 'tools/list');
check(names(r).includes('cleanup'), 'writer sees cleanup');
r = await mcp(writer, 'tools/call', cleanup);
check(r.status === 200 && r.json.result.isError === false, `writer cleanup: ${JSON.stringify(r.json)}`);

// A token for another resource on the same IdP is refused.
const elsewhere = await token('writer', 'tools:read', 'https://elsewhere.test/mcp');
r = await mcp(elsewhere, 'tools/list');
check(r.status === 401 && /invalid_token/.test(r.headers.get('www-authenticate')), `other audience: ${r.status}`);

// An expired token is refused.
const short = await token('shortlived', 'tools:read');
check((await mcp(short, 'tools/list')).status === 200, 'short-lived token works while fresh');
await new Promise((ok) => setTimeout(ok, 2500));
check((await mcp(short, 'tools/list')).status === 401, 'expired token refused');

// The IdP rotates its key: new tokens work without restarting moat, tokens of
// the dropped key fail.
const before = await token('reader', 'tools:read');
check((await mcp(before, 'tools/list')).status === 200, 'token before rotation');
check((await fetch(`${idp}/test/rotate`, { method: 'POST' })).ok, 'rotate');
const after = await token('reader', 'tools:read');
check((await mcp(after, 'tools/list')).status === 200, 'token of the new key (unknown kid refetched)');
check((await mcp(before, 'tools/list')).status === 401, 'token of the dropped key refused');
console.log('ok: read/write scopes, other audience, expiry and key rotation against oidc-provider');
