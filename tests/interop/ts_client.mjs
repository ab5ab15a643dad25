// The official TypeScript MCP SDK against a live `moat serve --dev`.
// usage: node ts_client.mjs URL TOKEN
// Connects, lists tools, calls disk_usage and a tool with progress, checks a tool
// error and that a connection without a token is refused with 401.
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [url, token] = process.argv.slice(2);
function check(cond, what) {
  if (!cond) {
    console.error(`FAILED: ${what}`);
    process.exit(1);
  }
}

const client = new Client({ name: 'moat-interop-ts', version: '1.0.0' });
const transport = new StreamableHTTPClientTransport(new URL(url), {
  requestInit: { headers: { Authorization: `Bearer ${token}` } },
});
await client.connect(transport);
check(client.getServerVersion()?.name === 'moat', 'server name');
const { tools } = await client.listTools();
const names = tools.map((t) => t.name);
check(names.includes('disk_usage') && names.includes('test_tool_with_progress'), `tools: ${names}`);
const usage = await client.callTool({ name: 'disk_usage', arguments: { path: '/' } });
const s = usage.structuredContent;
check(!usage.isError && s.total_bytes > 0 && s.used_bytes + s.free_bytes <= s.total_bytes, `disk_usage: ${JSON.stringify(usage)}`);
const progress = [];
await client.callTool({ name: 'test_tool_with_progress', arguments: {} }, undefined, {
  onprogress: (p) => progress.push(p.progress),
});
check(progress.length === 3 && progress[2] === 100, `progress reports: ${progress}`);
const err = await client.callTool({ name: 'test_error_handling', arguments: {} });
check(err.isError === true, 'test_error_handling should be a tool error');
await client.close();

const anon = new Client({ name: 'moat-interop-anon', version: '1.0.0' });
let refused = null;
try {
  await anon.connect(new StreamableHTTPClientTransport(new URL(url)));
} catch (e) {
  refused = e;
}
check(refused && /401|Unauthorized/i.test(String(refused) + String(refused.code)), `no token: ${refused}`);
console.log(`ok: ${names.length} tools, progress ${progress.join(',')}, 401 without a token`);
