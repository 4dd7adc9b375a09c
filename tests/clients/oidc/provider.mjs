// A real OpenID provider for the authorization tests: panva's oidc-provider, on loopback.
//
//   node provider.mjs   (configured by the environment)
//     PORT           where it listens
//     HOST           on which address (default 127.0.0.1; 0.0.0.0 in a pod)
//     ISSUER         its issuer URL (default http://127.0.0.1:PORT; in a cluster, its Service's URL)
//     KEYS_FILE      a JSON file {"keys": [private JWKs]}: the signing keys, the first signs; read at start, so a
//                    key rotation is a restart with another file (the JWKS endpoint publishes their public halves)
//     RESOURCES      the resource indicators (RFC 8707) it issues JWT access tokens for, comma-separated
//     OPAQUE         a resource indicator it issues opaque access tokens for (checked by introspection)
//     ACCESS_TTL     seconds an access token lives (default 300)
//
// Clients: `machine` and `other-machine` (client credentials, both scopes), `reader` (client credentials,
// tools:read only), `short-lived` (its tokens live 2 s), `introspector` (may introspect), and any client that
// registers itself (RFC 7591), as the official MCP client does. Each machine client's secret is `<id>-secret`. Users log in through oidc-provider's own development pages (any login name is a
// user; the password is not checked), which a test drives with plain HTTP.
//
// It prints one line, "ready <issuer>", once it listens.
import { readFileSync } from "node:fs";
import Provider from "oidc-provider";

const port = Number(process.env.PORT);
const host = process.env.HOST || "127.0.0.1";
const issuer = process.env.ISSUER || `http://127.0.0.1:${port}`;
const keys = JSON.parse(readFileSync(process.env.KEYS_FILE, "utf8")).keys;
const resources = (process.env.RESOURCES || "").split(",").filter(Boolean);
const opaque = process.env.OPAQUE || "";
const accessTtl = Number(process.env.ACCESS_TTL || 300);
const SCOPES = "tools:read tools:admin";

const machine = (id, scope) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ["client_credentials"],
  redirect_uris: [],
  response_types: [],
  token_endpoint_auth_method: "client_secret_basic",
  ...(scope ? { scope } : {}),
});

const provider = new Provider(issuer, {
  clients: [
    machine("machine", SCOPES),
    machine("other-machine", SCOPES),
    machine("reader", "tools:read"),
    machine("introspector", ""),
    machine("short-lived", SCOPES),
  ],
  jwks: { keys },
  scopes: ["openid", "offline_access", "tools:read", "tools:admin"],
  ttl: {
    AccessToken: accessTtl,
    ClientCredentials: (_ctx, _token, client) => (client.clientId === "short-lived" ? 2 : accessTtl),
  },
  features: {
    devInteractions: { enabled: true },
    clientCredentials: { enabled: true },
    registration: { enabled: true },
    introspection: {
      enabled: true,
      allowedPolicy: async (ctx) => ctx.oidc.client.clientId === "introspector",
    },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resources.includes(resource)) {
          return {
            audience: resource,
            scope: SCOPES,
            accessTokenFormat: "jwt",
            accessTokenTTL: accessTtl,
            jwt: { sign: { alg: keys[0].alg } },
          };
        }
        if (resource === opaque) {
          return { audience: resource, scope: SCOPES, accessTokenFormat: "opaque", accessTokenTTL: accessTtl };
        }
        throw new Provider.errors.InvalidTarget();
      },
    },
  },
  // Refresh tokens for users who consented to offline_access, and for every public client that asked (the
  // official MCP client refreshes its access token with them).
  issueRefreshToken: async (_ctx, client, code) =>
    client.grantTypeAllowed("refresh_token") && code.scopes.has("offline_access"),
  loadExistingGrant: async (ctx) => {
    // The development consent page is skipped: every scope and resource asked for is granted.
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid offline_access");
    for (const resource of [...resources, opaque].filter(Boolean)) grant.addResourceScope(resource, SCOPES);
    await grant.save();
    return grant;
  },
});
provider.proxy = false;

provider.listen(port, host, () => {
  console.log(`ready ${issuer}`);
});
