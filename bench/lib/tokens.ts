import { createHash, randomBytes } from 'node:crypto';
import { CookieJar, decode, follow, signInThroughForms, submit } from '../../test/support/form-login.ts';
import type { BenchClient, BenchUser, Fixtures } from './fixtures.ts';

async function tokenRequest(baseUrl: string, client: BenchClient, params: Record<string, string>): Promise<Record<string, unknown>> {
  const res = await fetch(`${baseUrl}/oauth/token`, {
    method: 'POST',
    headers: { authorization: client.authorization, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(params),
  });
  const body = (await res.json()) as Record<string, unknown>;
  if (res.status !== 200) throw new Error(`token request (${params.grant_type}) to ${baseUrl}: ${res.status} ${JSON.stringify(body)}`);
  return body;
}

/** One client_credentials access token (extra parameters such as `resource` pass through). */
export async function clientCredentialsToken(baseUrl: string, fixtures: Fixtures, extra: Record<string, string> = {}): Promise<string> {
  const body = await tokenRequest(baseUrl, fixtures.cc, { grant_type: 'client_credentials', scope: fixtures.cc.scope, ...extra });
  return body.access_token as string;
}

/** Authorization URL with PKCE (S256) for the bench web client; returns the verifier too. */
function authorizationRequest(baseUrl: string, fixtures: Fixtures): { url: string; verifier: string } {
  const verifier = randomBytes(32).toString('base64url');
  const url = new URL(`${baseUrl}/oauth/authorize`);
  url.search = new URLSearchParams({
    client_id: fixtures.web.clientId,
    response_type: 'code',
    scope: fixtures.web.scope,
    redirect_uri: fixtures.web.redirectUri,
    state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
    prompt: 'consent',
  }).toString();
  return { url: url.toString(), verifier };
}

async function exchangeCode(baseUrl: string, fixtures: Fixtures, callback: string, verifier: string): Promise<string> {
  const code = new URL(callback).searchParams.get('code');
  if (!code) throw new Error(`no code in the redirect: ${callback}`);
  const body = await tokenRequest(baseUrl, fixtures.web, {
    grant_type: 'authorization_code',
    code,
    redirect_uri: fixtures.web.redirectUri,
    code_verifier: verifier,
  });
  if (typeof body.refresh_token !== 'string') throw new Error(`no refresh_token from ${baseUrl}: ${JSON.stringify(Object.keys(body))}`);
  return body.refresh_token;
}

/** A fresh login on our server (its real login and consent pages): one grant, one refresh token. */
export async function subjectRefreshToken(baseUrl: string, fixtures: Fixtures, user: BenchUser): Promise<string> {
  const { url, verifier } = authorizationRequest(baseUrl, fixtures);
  const callback = await signInThroughForms(url, baseUrl, user);
  return exchangeCode(baseUrl, fixtures, callback, verifier);
}

/** The same on the bare provider, through its development login and consent forms. */
export async function bareRefreshToken(baseUrl: string, fixtures: Fixtures): Promise<string> {
  const { url, verifier } = authorizationRequest(baseUrl, fixtures);
  const jar = new CookieJar();
  let step = await follow(jar, url, baseUrl);
  for (let i = 0; i < 4 && step.page; i++) {
    const action = /<form[^>]*action="([^"]+)"/.exec(step.page.html)?.[1];
    if (!action) throw new Error(`no form on ${step.page.url} (${step.page.status}): ${step.page.html.slice(0, 300)}`);
    const values: Record<string, string> = step.page.html.includes('name="login"') ? { login: fixtures.bareAccount, password: 'any' } : {};
    step = await submit(jar, step.page, decode(action), values, baseUrl);
  }
  if (step.page) throw new Error(`bare provider sign-in did not finish: ${step.page.url}`);
  return exchangeCode(baseUrl, fixtures, step.final, verifier);
}

/** n results of `make(i)`, in order, at most `parallel` at a time. */
export async function many<T>(n: number, parallel: number, make: (i: number) => Promise<T>): Promise<T[]> {
  const out: T[] = new Array(n);
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      out[i] = await make(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return out;
}

/** POST /v1/auth/login: a JWT access token and a refresh token of a new login. */
export async function firstPartyLogin(baseUrl: string, user: BenchUser): Promise<{ token: string; refreshToken: string }> {
  const res = await fetch(`${baseUrl}/v1/auth/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ email: user.email, password: user.password }),
  });
  const body = (await res.json()) as { token?: string; refreshToken?: string };
  if (res.status !== 200 || !body.token || !body.refreshToken) throw new Error(`login at ${baseUrl}: ${res.status} ${JSON.stringify(body)}`);
  return { token: body.token, refreshToken: body.refreshToken };
}

/** A new API key of the signed-in user (POST /v1/auth/api-keys), with one scope. */
export async function createApiKey(baseUrl: string, accessToken: string, scope: string): Promise<string> {
  const res = await fetch(`${baseUrl}/v1/auth/api-keys`, {
    method: 'POST',
    headers: { authorization: `Bearer ${accessToken}`, 'content-type': 'application/json' },
    body: JSON.stringify({ name: `bench ${randomBytes(6).toString('hex')}`, scopes: [scope], expiresIn: '1d' }),
  });
  const body = (await res.json()) as { apiKey?: string };
  if (res.status !== 201 || !body.apiKey) throw new Error(`API key creation at ${baseUrl}: ${res.status} ${JSON.stringify(body)}`);
  return body.apiKey;
}

/** At least `n` ordinary bench users (created once through POST /v1/admin/users, kept in fixtures). */
export async function benchUsers(baseUrl: string, fixtures: Fixtures, n: number): Promise<BenchUser[]> {
  if (fixtures.users.length < n) {
    const { token } = await firstPartyLogin(baseUrl, fixtures.admin);
    const created = await many(n - fixtures.users.length, 2, async (i) => {
      const user = { email: `bench-user-${fixtures.users.length + i}@example.com`, password: fixtures.admin.password };
      const res = await fetch(`${baseUrl}/v1/admin/users`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
        body: JSON.stringify({ ...user, name: 'Bench user', scopes: ['cmdb.read'] }),
      });
      if (res.status !== 201) throw new Error(`creating ${user.email} at ${baseUrl}: ${res.status} ${await res.text()}`);
      return user;
    });
    fixtures.users.push(...created);
  }
  return fixtures.users.slice(0, n);
}
