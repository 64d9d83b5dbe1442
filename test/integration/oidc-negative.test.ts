import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as oidc from 'openid-client';
import { SignJWT, generateKeyPair, decodeJwt } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { CookieJar, follow, signInThroughForms, submit } from '../support/form-login.ts';

describe('authorization server refuses what it must (Redis store)', () => {
  let server: TestServer;
  let config: oidc.Configuration;
  let basic: string;

  beforeAll(async () => {
    server = await startTestServer();
    config = await oidc.discovery(new URL(server.url), server.demoClient.client_id, server.demoClient.client_secret, undefined, {
      execute: [oidc.allowInsecureRequests],
    });
    basic = `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}`;
  });
  afterAll(() => server?.close());

  const authorizeUrl = (extra: Record<string, string> = {}) => {
    const url = new URL(`${server.url}/oauth/authorize`);
    const params = {
      client_id: server.demoClient.client_id,
      response_type: 'code',
      scope: 'openid cmdb.read',
      redirect_uri: server.demoClient.redirect_uri,
      state: 'st-1',
      nonce: 'n-1',
      ...extra,
    };
    for (const [k, v] of Object.entries(params)) if (v !== '') url.searchParams.set(k, v);
    return url.toString();
  };

  async function codeFor(extra: Record<string, string> = {}) {
    const callback = new URL(await signInThroughForms(authorizeUrl(extra), server.url, server.admin));
    return { code: callback.searchParams.get('code')!, callback };
  }

  const tokenRequest = (body: Record<string, string>, auth = basic) =>
    fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(body),
    });

  const introspect = async (token: string) =>
    (await (await fetch(`${server.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    })).json()) as { active: boolean };

  it('carries state back and puts the nonce in the ID token', async () => {
    const { code, callback } = await codeFor();
    expect(callback.searchParams.get('state')).toBe('st-1');
    expect(callback.searchParams.get('iss')).toBe(server.url);
    const res = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri });
    const body = await res.json() as { id_token: string; access_token: string; refresh_token: string };
    expect(res.status).toBe(200);
    expect(decodeJwt(body.id_token).nonce).toBe('n-1');
  });

  it('refuses a redirect_uri that is not registered exactly', async () => {
    for (const redirect of [
      `${server.demoClient.redirect_uri}/extra`,
      `${server.demoClient.redirect_uri}?x=1`,
      server.demoClient.redirect_uri.replace('127.0.0.1', 'localhost'),
      'https://evil.example/callback',
      `${server.demoClient.redirect_uri}#frag`,
    ]) {
      const res = await fetch(authorizeUrl({ redirect_uri: redirect }), { redirect: 'manual' });
      expect(res.status, redirect).toBe(400);
      expect(res.headers.get('location')).toBeNull();
      expect(await res.text()).toContain('redirect_uri');
    }
  });

  it('refuses a code redeemed with a different redirect_uri', async () => {
    const { code } = await codeFor();
    const res = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: `${server.url}/other` });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('refuses a missing or wrong PKCE verifier when a challenge was sent', async () => {
    const verifier = oidc.randomPKCECodeVerifier();
    const challenge = await oidc.calculatePKCECodeChallenge(verifier);
    const first = await codeFor({ code_challenge: challenge, code_challenge_method: 'S256' });
    const missing = await tokenRequest({ grant_type: 'authorization_code', code: first.code, redirect_uri: server.demoClient.redirect_uri });
    expect(missing.status).toBe(400);
    const second = await codeFor({ code_challenge: challenge, code_challenge_method: 'S256' });
    const wrong = await tokenRequest({ grant_type: 'authorization_code', code: second.code, redirect_uri: server.demoClient.redirect_uri, code_verifier: oidc.randomPKCECodeVerifier() });
    expect(wrong.status).toBe(400);
    expect(((await wrong.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('refuses PKCE method plain (downgrade)', async () => {
    const res = await fetch(authorizeUrl({ code_challenge: 'a'.repeat(43), code_challenge_method: 'plain' }), { redirect: 'manual' });
    const location = res.headers.get('location') ?? '';
    expect(location).toContain('error=invalid_request');
  });

  it('requires PKCE from public clients', async () => {
    await server.deps.clients.save({
      client_id: 'public-spa',
      client_name: 'SPA',
      redirect_uris: [`${server.url}/demo/callback`],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const res = await fetch(authorizeUrl({ client_id: 'public-spa' }), { redirect: 'manual' });
    expect(res.headers.get('location') ?? '').toContain('error=invalid_request');
    expect(decodeURIComponent(res.headers.get('location') ?? '')).toContain('PKCE');
  });

  it('refuses a code used twice and revokes what the first use issued', async () => {
    const { code } = await codeFor();
    const first = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri });
    const tokens = await first.json() as { access_token: string; refresh_token: string };
    expect(first.status).toBe(200);
    const again = await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri });
    expect(again.status).toBe(400);
    expect(((await again.json()) as { error: string }).error).toBe('invalid_grant');
    expect((await introspect(tokens.access_token)).active).toBe(false);
    expect((await introspect(tokens.refresh_token)).active).toBe(false);
  });

  it('revokes the whole family when a rotated refresh token is used again', async () => {
    const { code } = await codeFor();
    const issued = await (await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri })).json() as { refresh_token: string };
    const rotated = await (await tokenRequest({ grant_type: 'refresh_token', refresh_token: issued.refresh_token })).json() as { refresh_token: string; access_token: string };
    expect(rotated.refresh_token).not.toBe(issued.refresh_token);
    expect((await introspect(rotated.access_token)).active).toBe(true);

    const reuse = await tokenRequest({ grant_type: 'refresh_token', refresh_token: issued.refresh_token });
    expect(reuse.status).toBe(400);
    expect(((await reuse.json()) as { error: string }).error).toBe('invalid_grant');
    // Every token of that login is dead now, including the newest pair.
    expect((await introspect(rotated.refresh_token)).active).toBe(false);
    expect((await introspect(rotated.access_token)).active).toBe(false);
    const next = await tokenRequest({ grant_type: 'refresh_token', refresh_token: rotated.refresh_token });
    expect(next.status).toBe(400);
  });

  it('lets exactly one of several concurrent refreshes win, and treats the others as reuse', async () => {
    const { code } = await codeFor();
    const issued = await (await tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri })).json() as { refresh_token: string };
    const answers = await Promise.all(Array.from({ length: 6 }, () => tokenRequest({ grant_type: 'refresh_token', refresh_token: issued.refresh_token })));
    const winners = answers.filter((r) => r.status === 200);
    expect(winners.length).toBe(1);
    for (const loser of answers.filter((r) => r.status !== 200)) expect(loser.status).toBe(400);
    // However the race went, the login is over: a winner's new refresh token is dead too.
    if (winners.length) {
      const won = await winners[0].json() as { refresh_token: string };
      expect((await introspect(won.refresh_token)).active).toBe(false);
    }
  });

  it('lets an authorization code be redeemed at most once under concurrency', async () => {
    const { code } = await codeFor();
    const answers = await Promise.all(Array.from({ length: 6 }, () => tokenRequest({ grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri })));
    expect(answers.filter((r) => r.status === 200).length).toBe(1);
  });

  it('reports an access token inactive once the (controlled) clock passes its expiry', async () => {
    const tokens = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' });
    expect((await introspect(tokens.access_token)).active).toBe(true);
    server.clock.advance(16 * 60 * 1000);
    try {
      expect((await introspect(tokens.access_token)).active).toBe(false);
    } finally {
      server.clock.advance(-16 * 60 * 1000);
    }
  });

  it('refuses a bad client secret without saying more', async () => {
    const res = await tokenRequest({ grant_type: 'client_credentials', scope: 'cmdb.read' },
      `Basic ${Buffer.from(`${server.demoClient.client_id}:wrong-secret-value`).toString('base64')}`);
    expect(res.status).toBe(401);
    const body = await res.json() as { error: string; error_description: string };
    expect(body.error).toBe('invalid_client');
    expect(JSON.stringify(body)).not.toContain(server.demoClient.client_secret);
  });

  it('refuses client-credentials scopes the client was not registered for', async () => {
    await server.deps.clients.save({
      client_id: 'narrow-client', grant_types: ['client_credentials'], response_types: [], redirect_uris: [],
      token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read',
    }, 'narrow-client-secret-0123456789');
    const res = await tokenRequest({ grant_type: 'client_credentials', scope: 'cmdb.read admin.users' },
      `Basic ${Buffer.from('narrow-client:narrow-client-secret-0123456789').toString('base64')}`);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: string }).error).toBe('invalid_scope');
  });

  it('finds alg:none, tampered, foreign-key and other-issuer JWTs inactive', async () => {
    const { access_token: token } = await oidc.clientCredentialsGrant(config, { scope: 'cmdb.read' });
    const [header, payload, signature] = token.split('.');
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
    const enc = (o: unknown) => Buffer.from(JSON.stringify(o)).toString('base64url');

    const none = `${enc({ alg: 'none', typ: 'at+jwt' })}.${payload}.`;
    const tampered = `${header}.${enc({ ...claims, scope: 'admin.users', scopes: ['admin.users'] })}.${signature}`;
    const stripped = `${header}.${payload}.`;
    const { privateKey } = await generateKeyPair('ES256');
    const kid = JSON.parse(Buffer.from(header, 'base64url').toString()).kid;
    const foreign = await new SignJWT(claims).setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid }).sign(privateKey);
    const hs = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid }).sign(new TextEncoder().encode('x'.repeat(32)));
    for (const bad of [none, tampered, stripped, foreign, hs]) {
      expect((await introspect(bad)).active).toBe(false);
      const res = await fetch(`${server.url}/oauth/userinfo`, { headers: { authorization: `Bearer ${bad}` } });
      expect(res.status).toBe(401);
    }
    expect((await introspect(token)).active).toBe(true);
  });

  it('refuses the login form without its CSRF token, and with a wrong one', async () => {
    for (const csrf of [undefined, 'forged-token']) {
      const jar = new CookieJar();
      const step = await follow(jar, authorizeUrl(), server.url);
      expect(step.page?.html).toContain('name="csrf"');
      const page = { ...step.page!, html: step.page!.html.replace(/<input type="hidden" name="csrf"[^>]*>/g, '') };
      const values: Record<string, string> = { email: server.admin.email, password: server.admin.password };
      if (csrf) values.csrf = csrf;
      const result = await submit(jar, page, '/login', values, server.url);
      expect(result.page?.status).toBe(403);
      expect(result.final).not.toContain('code=');
    }
  });

  it('answers a wrong password with the same message as an unknown email', async () => {
    const messages: string[] = [];
    for (const credentials of [
      { email: server.admin.email, password: 'not-the-password' },
      { email: 'nobody@example.test', password: 'not-the-password' },
    ]) {
      const jar = new CookieJar();
      const step = await follow(jar, authorizeUrl(), server.url);
      const result = await submit(jar, step.page!, '/login', credentials, server.url);
      expect(result.page?.status).toBe(401);
      messages.push(/<p class="error"[^>]*>([^<]*)</.exec(result.page!.html)![1]);
    }
    expect(messages[0]).toBe('Invalid email or password.');
    expect(messages[1]).toBe(messages[0]);
  });

  it('pages cannot be framed', async () => {
    const jar = new CookieJar();
    const step = await follow(jar, authorizeUrl(), server.url);
    const res = await fetch(step.page!.url, { headers: { cookie: jar.header(step.page!.url) } });
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('x-frame-options')).toBe('DENY');
  });
});
