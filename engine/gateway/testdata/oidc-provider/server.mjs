// An OpenID Provider for the gateway's end-to-end OAuth test: panva/oidc-provider (a certified
// implementation), on 127.0.0.1 at a free port, with fresh signing keys. It prints
// "READY <issuer>" once it listens and runs until stdin closes (the Go test ends it so).
//
// Clients: "hooks-sender" (client_credentials, scope hooks:write) gets JWT access tokens for
// the resource https://hooks.example.test (RS256) and https://es.example.test (ES256), and
// opaque ones for https://opaque.example.test;
// "gateway" may call the introspection endpoint. Tokens can be revoked (RFC 7009). Secrets come from the environment.
import { generateKeyPairSync } from 'node:crypto';
import { createServer } from 'node:http';
import Provider from 'oidc-provider';

const jwk = (type, opts, alg, kid) => ({
  ...generateKeyPairSync(type, opts).privateKey.export({ format: 'jwk' }), alg, kid, use: 'sig',
});

const server = createServer();
server.listen(0, '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: 'hooks-sender',
        client_secret: process.env.SENDER_SECRET,
        grant_types: ['client_credentials'],
        redirect_uris: [],
        response_types: [],
        scope: 'hooks:write',
      },
      {
        client_id: 'gateway',
        client_secret: process.env.GATEWAY_SECRET,
        grant_types: [],
        redirect_uris: [],
        response_types: [],
      },
    ],
    scopes: ['hooks:write'],
    jwks: {
      keys: [
        jwk('rsa', { modulusLength: 2048 }, 'RS256', 'rs-1'),
        jwk('ec', { namedCurve: 'P-256' }, 'ES256', 'es-1'),
      ],
    },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      introspection: { enabled: true },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (ctx, client, oneOf) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => ({
          scope: 'hooks:write',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: resource === 'https://opaque.example.test' ? 'opaque' : 'jwt',
          jwt: { sign: { alg: resource === 'https://es.example.test' ? 'ES256' : 'RS256' } },
        }),
      },
    },
  });
  server.on('request', provider.callback());
  console.log(`READY ${issuer}`);
});
process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
