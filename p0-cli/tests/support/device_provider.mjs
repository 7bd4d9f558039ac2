// A real OpenID provider that offers the device authorization grant: node `oidc-provider`
// (OpenID Certified), with its development interactions. For p0-cli/tests/oidc.rs:
//   P0_OIDC_PROVIDER_MODULE=/path/to/node_modules/oidc-provider/lib/index.js node device_provider.mjs PORT
import { pathToFileURL } from 'node:url';

const { default: Provider } = await import(pathToFileURL(process.env.P0_OIDC_PROVIDER_MODULE).href);
const port = Number(process.argv[2]);
const issuer = `http://127.0.0.1:${port}`;
const provider = new Provider(issuer, {
  clients: [{
    client_id: 'p0-cli',
    token_endpoint_auth_method: 'none', // a public client: the CLI holds no secret
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code', 'refresh_token'],
    response_types: [],
    redirect_uris: [],
  }],
  features: { devInteractions: { enabled: true }, deviceFlow: { enabled: true } },
  findAccount: (ctx, id) => ({ accountId: id, claims: () => ({ sub: id, email: id }) }),
  claims: { openid: ['sub'], email: ['email'] },
});
provider.listen(port, '127.0.0.1', () => console.log(`listening ${issuer}`));
