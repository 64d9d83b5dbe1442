import { createHash, randomBytes } from 'node:crypto';
import { CookieJar, decode, follow, signInThroughForms, submit } from '../../test/support/form-login.ts';
import type { BenchClient, Fixtures } from './fixtures.ts';

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
export async function subjectRefreshToken(baseUrl: string, fixtures: Fixtures): Promise<string> {
  const { url, verifier } = authorizationRequest(baseUrl, fixtures);
  const callback = await signInThroughForms(url, baseUrl, fixtures.admin);
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

/** n results of `make`, at most `parallel` at a time. */
export async function many<T>(n: number, parallel: number, make: () => Promise<T>): Promise<T[]> {
  const out: T[] = [];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      next++;
      out.push(await make());
    }
  };
  await Promise.all(Array.from({ length: Math.min(parallel, n) }, worker));
  return out;
}
