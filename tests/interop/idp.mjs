// A real OAuth 2.1 / OpenID authorization server on loopback (npm `oidc-provider`)
// for moat's auth tests: client_credentials grant, resource indicators issuing
// ES256 JWT access tokens whose `aud` is the requested resource.
//
// usage: MOAT_IDP_CLIENTS='[{"client_id":..,"client_secret":..,"scope":..}]' node idp.mjs
// Prints "listening PORT". POST /test/rotate replaces the signing key (the old
// one leaves the JWKS), as an IdP's key rotation would.
import http from 'node:http';
import crypto from 'node:crypto';
import Provider from 'oidc-provider';

const clients = JSON.parse(process.env.MOAT_IDP_CLIENTS ?? '[]').map((c) => ({
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: 'client_secret_basic',
  id_token_signed_response_alg: 'ES256',
  ...c,
}));

function signingKey() {
  const { privateKey } = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const jwk = privateKey.export({ format: 'jwk' });
  return { ...jwk, kid: crypto.randomUUID(), alg: 'ES256', use: 'sig' };
}

let issuer;
function provider() {
  const p = new Provider(issuer, {
    clients,
    jwks: { keys: [signingKey()] },
    scopes: ['tools:read', 'tools:write'],
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource, client) => ({
          scope: 'tools:read tools:write',
          audience: resource,
          // A client named "shortlived" gets one-second tokens, to watch them expire.
          accessTokenTTL: client.clientId === 'shortlived' ? 1 : 600,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
  });
  p.proxy = false;
  return p;
}

let current;
const server = http.createServer((req, res) => {
  if (req.method === 'POST' && req.url === '/test/rotate') {
    current = provider();
    res.writeHead(204).end();
    return;
  }
  current.callback()(req, res);
});
server.listen(0, '127.0.0.1', () => {
  issuer = `http://127.0.0.1:${server.address().port}`;
  current = provider();
  console.log(`listening ${server.address().port}`);
});
