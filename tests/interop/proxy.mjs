// A header-injecting reverse proxy for the conformance suite, which cannot send
// an Authorization header. It adds `Authorization: Bearer $MOAT_TOKEN` and
// otherwise forwards requests and responses untouched and unbuffered (SSE
// streams, status codes, Host and Origin), closing upstream when the client goes.
//
// usage: node proxy.mjs UPSTREAM_PORT  (prints "listening PORT" once ready)
import http from 'node:http';

const upstreamPort = Number(process.argv[2]);
const token = process.env.MOAT_TOKEN;
if (!upstreamPort || !token) {
  console.error('usage: MOAT_TOKEN=... node proxy.mjs UPSTREAM_PORT');
  process.exit(2);
}
const agent = new http.Agent({ keepAlive: true });

const server = http.createServer((req, res) => {
  const headers = { ...req.headers, authorization: `Bearer ${token}` };
  const up = http.request(
    { host: '127.0.0.1', port: upstreamPort, method: req.method, path: req.url, headers, agent },
    (upRes) => {
      res.writeHead(upRes.statusCode, upRes.rawHeaders);
      res.flushHeaders();
      upRes.pipe(res);
    },
  );
  up.on('error', (e) => {
    if (!res.headersSent) res.writeHead(502, { 'content-type': 'text/plain' });
    res.end(`proxy: ${e.message}`);
  });
  res.on('close', () => up.destroy());
  req.pipe(up);
});
server.listen(0, '127.0.0.1', () => console.log(`listening ${server.address().port}`));
