import { createPrivateKey, randomBytes, sign, type KeyObject } from 'node:crypto';
import type autocannon from 'autocannon';
import { runCannons } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import { firstPartyLogin } from '../lib/tokens.ts';
import type { BenchContext, Plan, Scenario } from '../lib/types.ts';
import { clientCredentialsPlan } from './client-credentials.ts';

const JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
const PATH = '/v1/auth/service-account/token';

interface KeyFile {
  account_id: string;
  key_id: string;
  private_key: string;
  token_uri: string;
}

/** Assertion algorithms measured: ES256, and RS256, the one the guide's Python client signs with. */
type AssertionAlg = 'ES256' | 'RS256';

/** A service account with a server-made key pair for `alg` (POST /v1/admin/service-accounts as the admin). */
async function createServiceAccount(url: string, ctx: BenchContext, alg: AssertionAlg): Promise<KeyFile> {
  const { token } = await firstPartyLogin(url, ctx.fixtures.admin);
  const res = await fetch(`${url}/v1/admin/service-accounts`, {
    method: 'POST',
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `bench ${randomBytes(4).toString('hex')}`, scopes: ['cmdb.read'], alg }),
  });
  const body = (await res.json()) as { keyFile?: KeyFile };
  if (res.status !== 201 || !body.keyFile) throw new Error(`service account creation at ${url}: ${res.status} ${JSON.stringify(body)}`);
  return body.keyFile;
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** One RFC 7523 assertion: iss = sub = the account, aud = its token URI, a unique jti, 5 minutes to live. */
function assertion(file: KeyFile, key: KeyObject, alg: AssertionAlg): string {
  const iat = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg, typ: 'JWT', kid: file.key_id })}.${b64({
    iss: file.account_id, sub: file.account_id, aud: file.token_uri, iat, exp: iat + 300, jti: randomBytes(16).toString('base64url'),
  })}`;
  const signature = alg === 'ES256' ? sign('sha256', Buffer.from(input), { key, dsaEncoding: 'ieee-p1363' }) : sign('sha256', Buffer.from(input), key);
  return `${input}.${signature.toString('base64url')}`;
}

/**
 * The JWT-bearer grant at the guide's endpoint. Every request carries a new assertion (its
 * jti is single use), signed before the timed window: enough for the run at 1.5 × the
 * rate last seen, and signed on the spot (in the load generator) only if they run out.
 */
/** How long the assertions of a run may take to sign before it. */
const PRESIGN_BUDGET_MS = 8_000;

function serviceAccountPlan(alg: AssertionAlg): Plan {
  const key = targets.server('ES256');
  let file: KeyFile | undefined;
  let lastRate = 3000;
  return {
    id: alg === 'ES256' ? 'ours-jwt-bearer' : `ours-jwt-bearer-${alg.toLowerCase()}`,
    label: `nopesight-auth, POST /v1/auth/service-account/token (${alg} assertion, new jti each)`,
    processes: [key],
    async prepare(ctx) {
      const target = await ctx.pool.get(key);
      file ??= await createServiceAccount(target.url, ctx, alg);
      const privateKey = createPrivateKey(file.private_key);
      const body = (a: string) => `grant_type=${encodeURIComponent(JWT_BEARER)}&assertion=${a}&scope=cmdb.read`;
      // Checked before the pool is signed: signing takes seconds, and a kept-alive connection
      // the server closed meanwhile would fail this POST (it is not retried).
      const check = await fetch(target.url + PATH, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: body(assertion(file, privateKey, alg)) });
      if (check.status !== 200) throw new Error(`jwt-bearer grant at ${target.url}: ${check.status} ${await check.text()}`);
      const plannedS = Math.max(ctx.options.durationS, ctx.options.warmupS);
      const wanted = Math.ceil(Math.max(lastRate, 200) * plannedS * 1.5);
      // RSA signatures cost about a millisecond each here: signing stops after PRESIGN_BUDGET_MS.
      const pool: string[] = [];
      const signingUntil = performance.now() + PRESIGN_BUDGET_MS;
      while (pool.length < wanted && performance.now() < signingUntil) pool.push(assertion(file, privateKey, alg));
      if (pool.length < wanted) ctx.log(`    ${pool.length} of ${wanted} assertions signed ahead (${PRESIGN_BUDGET_MS / 1000} s budget)`);
      let signedLate = 0;
      const next = () => pool.pop() ?? (signedLate++, assertion(file!, privateKey, alg));
      const headers = { 'content-type': 'application/x-www-form-urlencoded' };
      const setupClient = (client: autocannon.Client) => {
        client.setRequests([{ method: 'POST', path: PATH, headers, setupRequest: (request) => ({ ...request, body: body(next()) }) }]);
      };
      return async (durationS) => {
        const sample = await runCannons([{ url: target.url, connections: ctx.options.connections, method: 'POST', path: PATH, headers, body: body(next()), setupClient }], durationS);
        lastRate = sample.ok / sample.durationS;
        if (signedLate) ctx.log(`    ${signedLate} assertions were signed during the run (the pre-signed ones ran out)`);
        return sample;
      };
    },
  };
}

const requires = [{ method: 'POST', path: PATH }, { method: 'POST', path: '/v1/admin/service-accounts' }];
const bareClientCredentials = () => clientCredentialsPlan('bare-cc-ES256', 'bare oidc-provider client_credentials, ES256', targets.bare('ES256'));

export const serviceAccountScenario: Scenario = {
  id: 'jwt-bearer',
  title: 'jwt-bearer grant (service account)',
  subject: serviceAccountPlan('ES256'),
  baseline: bareClientCredentials(),
  target: 0.7,
  ratioOf: 'rps',
  requires,
};

/** The same grant with RS256 assertions, as the guide's Python client signs them (an RSA verification costs far less than an ECDSA one). */
export const serviceAccountRs256Scenario: Scenario = {
  id: 'jwt-bearer-rs256',
  title: 'jwt-bearer grant (service account), RS256 assertion',
  subject: serviceAccountPlan('RS256'),
  baseline: bareClientCredentials(),
  target: 0.7,
  ratioOf: 'rps',
  requires,
};
