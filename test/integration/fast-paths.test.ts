import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { apiScopesOf } from '../../src/domain/scopes.ts';
import type { ClientMetadata } from '../../src/domain/clients.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';

/**
 * The fast paths (client_credentials, JWT introspection) must answer exactly as the
 * provider does. Two servers share one store, keys and issuer: one with TOKEN_FAST_PATH
 * on, one with it off. Every request below goes to both and the answers are compared
 * (tokens by their claims). The provider's events (grant.success, grant.error,
 * introspection.error) show which path answered.
 */
const SECRET = 'Sec ret:+%/x-y';
const ODD_SECRET = 'a b+c%d:e/f?g=h&i';

function clients(scopes: string[]): { metadata: ClientMetadata; secret: string }[] {
  const base = { response_types: [], redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: scopes.join(' ') };
  return [
    { metadata: { ...base, client_id: 'm2m' }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-other' }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-narrow', scope: scopes[0] }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-odd' }, secret: ODD_SECRET },
    { metadata: { ...base, client_id: 'm2m-post', token_endpoint_auth_method: 'client_secret_post' }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-expired', client_secret_expires_at: 1_000_000_000 }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-dpop', dpop_bound_access_tokens: true }, secret: SECRET },
    { metadata: { ...base, client_id: 'web-only', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://app.example/cb'] }, secret: SECRET },
  ];
}

const basicOf = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;
const FORM = { 'content-type': 'application/x-www-form-urlencoded' };
const AS_M2M = { ...FORM, authorization: basicOf('m2m', SECRET) };

interface Case {
  name: string;
  path: '/oauth/token' | '/oauth/introspect';
  headers: Record<string, string>;
  body: string;
  /** The fast path answers this one itself; when false, the provider does. */
  fast: boolean;
}

describe('fast paths answer as the provider does', () => {
  let fast: TestServer;
  let slow: TestServer;
  let scopes: string[];
  const providerEvents = new Map<TestServer, number>();
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    const shared = { prefix: `fp${randomAlphanumeric(6)}:`, secretKey: randomAlphanumeric(40) };
    fast = await startTestServer(shared);
    slow = await startTestServer({ ...shared, config: { tokenFastPath: false, publicUrl: fast.deps.config.publicUrl } });
    scopes = apiScopesOf(fast.deps.scopeCatalog);
    for (const c of clients(scopes)) await fast.deps.clients.save(c.metadata, c.secret);
    for (const server of [fast, slow]) {
      providerEvents.set(server, 0);
      const provider = server.running.app.providers.current();
      for (const event of ['grant.success', 'grant.error', 'introspection.error'] as const) provider.on(event as never, () => providerEvents.set(server, providerEvents.get(server)! + 1));
    }
    const issue = async (id: string) => {
      const res = await fetch(`${slow.url}/oauth/token`, { method: 'POST', headers: { ...FORM, authorization: basicOf(id, SECRET) }, body: `grant_type=client_credentials&scope=${scopes[0]}` });
      return ((await res.json()) as { access_token: string }).access_token;
    };
    tokens.own = await issue('m2m');
    tokens.others = await issue('m2m-other');
    tokens.revoked = await issue('m2m');
    const revoked = await fetch(`${slow.url}/oauth/revoke`, { method: 'POST', headers: AS_M2M, body: `token=${tokens.revoked}` });
    expect(revoked.status).toBe(200);
    const [h, p] = tokens.own.split('.');
    tokens.forged = `${h}.${p}.${'A'.repeat(86)}`;
  });
  afterAll(async () => {
    await Promise.all([fast?.close(), slow?.close()]);
  });

  const tokenCases = (): Case[] => {
    const t = (name: string, headers: Record<string, string>, body: string, fastPath: boolean): Case => ({ name: `token: ${name}`, path: '/oauth/token', headers, body, fast: fastPath });
    const as = (id: string, secret = SECRET) => ({ ...FORM, authorization: basicOf(id, secret) });
    return [
      t('one scope', AS_M2M, `grant_type=client_credentials&scope=${scopes[0]}`, true),
      t('every API scope', AS_M2M, `grant_type=client_credentials&scope=${encodeURIComponent(scopes.join(' '))}`, true),
      t('no scope', AS_M2M, 'grant_type=client_credentials', true),
      t('a scope twice', AS_M2M, `grant_type=client_credentials&scope=${scopes[0]}+${scopes[0]}`, true),
      t('charset=UTF-8', { ...AS_M2M, 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, 'grant_type=client_credentials', true),
      t('lower-case basic scheme', { ...AS_M2M, authorization: AS_M2M.authorization.replace('Basic', 'basic') }, 'grant_type=client_credentials', true),
      t('secret with reserved characters', as('m2m-odd', ODD_SECRET), 'grant_type=client_credentials', true),
      t('secret with a raw colon and percent', { ...FORM, authorization: `Basic ${Buffer.from(`m2m-odd:${ODD_SECRET}`).toString('base64')}` }, 'grant_type=client_credentials', false),
      t('unknown scope', AS_M2M, 'grant_type=client_credentials&scope=no.such.scope', false),
      t('scope the client may not ask for', as('m2m-narrow'), `grant_type=client_credentials&scope=${encodeURIComponent(scopes.join(' '))}`, false),
      t('empty scope', AS_M2M, 'grant_type=client_credentials&scope=', false),
      t('scope with a double space', AS_M2M, `grant_type=client_credentials&scope=${scopes[0]}%20%20${scopes[0]}`, false),
      t('wrong secret', as('m2m', 'wrong'), 'grant_type=client_credentials', false),
      t('unknown client', as('nobody'), 'grant_type=client_credentials', false),
      t('empty secret', { ...FORM, authorization: `Basic ${Buffer.from('m2m:').toString('base64')}` }, 'grant_type=client_credentials', false),
      t('bad base64', { ...FORM, authorization: 'Basic bTJtOnNlY3JldA=' }, 'grant_type=client_credentials', false),
      t('client_secret_post client over Basic', as('m2m-post'), 'grant_type=client_credentials', false),
      t('expired secret', as('m2m-expired'), 'grant_type=client_credentials', false),
      t('DPoP-bound client without a proof', as('m2m-dpop'), 'grant_type=client_credentials', false),
      t('grant not allowed', as('web-only'), 'grant_type=client_credentials', false),
      t('grant_type twice', AS_M2M, 'grant_type=client_credentials&grant_type=client_credentials', false),
      t('client_id in the body too', AS_M2M, 'grant_type=client_credentials&client_id=m2m', false),
      t('client_secret in the body too', AS_M2M, `grant_type=client_credentials&client_secret=${encodeURIComponent(SECRET)}`, false),
      t('explicit resource', AS_M2M, `grant_type=client_credentials&resource=${encodeURIComponent(fast.deps.config.apiAudience ?? fast.deps.config.publicUrl)}`, false),
      t('unknown parameter', AS_M2M, 'grant_type=client_credentials&foo=bar', false),
      t('other grant', AS_M2M, 'grant_type=password&username=a&password=b', false),
      t('DPoP header', { ...AS_M2M, dpop: 'not-a-proof' }, 'grant_type=client_credentials', false),
      t('Origin header', { ...AS_M2M, origin: 'https://elsewhere.example' }, 'grant_type=client_credentials', false),
      t('JSON body', { ...AS_M2M, 'content-type': 'application/json' }, '{"grant_type":"client_credentials"}', false),
      t('other charset', { ...AS_M2M, 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, 'grant_type=client_credentials', false),
    ];
  };

  const introspectionCases = (): Case[] => {
    const i = (name: string, headers: Record<string, string>, body: string, fastPath: boolean): Case => ({ name: `introspect: ${name}`, path: '/oauth/introspect', headers, body, fast: fastPath });
    return [
      i('its own token', AS_M2M, `token=${tokens.own}`, true),
      i('another client\'s token', AS_M2M, `token=${tokens.others}`, true),
      i('with the access_token hint', AS_M2M, `token=${tokens.own}&token_type_hint=access_token`, true),
      i('a revoked token', AS_M2M, `token=${tokens.revoked}`, true),
      i('a forged signature', AS_M2M, `token=${tokens.forged}`, true),
      i('a refresh_token hint', AS_M2M, `token=${tokens.own}&token_type_hint=refresh_token`, false),
      i('an opaque value', AS_M2M, 'token=not-a-jwt', false),
      i('no token', AS_M2M, '', false),
      i('token twice', AS_M2M, `token=${tokens.own}&token=${tokens.own}`, false),
      i('wrong secret', { ...FORM, authorization: basicOf('m2m', 'wrong') }, `token=${tokens.own}`, false),
      i('client_secret_post client over Basic', { ...FORM, authorization: basicOf('m2m-post', SECRET) }, `token=${tokens.own}`, false),
      i('client_secret_post in the body', FORM, `token=${tokens.own}&client_id=m2m-post&client_secret=${encodeURIComponent(SECRET)}`, false),
      i('no client authentication', FORM, `token=${tokens.own}`, false),
    ];
  };

  /** The answer with what legitimately differs between two requests (token ids and times, request ids) taken out. */
  async function answer(server: TestServer, c: Case) {
    const before = providerEvents.get(server)!;
    const res = await fetch(`${server.url}${c.path}`, { method: 'POST', headers: c.headers, body: c.body });
    const text = await res.text();
    const json = (text ? JSON.parse(text) : {}) as Record<string, unknown>;
    let token: Record<string, unknown> | undefined;
    if (typeof json.access_token === 'string') {
      const claims = decodeJwt(json.access_token);
      expect(claims.exp! - claims.iat!).toBe(json.expires_in);
      const { jti, iat, exp, ...rest } = claims;
      expect(typeof jti).toBe('string');
      token = { header: decodeProtectedHeader(json.access_token), claimNames: Object.keys(claims).sort(), ...rest };
      json.access_token = 'TOKEN';
    }
    delete json.request_id;
    return {
      answer: {
        status: res.status,
        json,
        token,
        cacheControl: res.headers.get('cache-control'),
        pragma: res.headers.get('pragma'),
        wwwAuthenticate: res.headers.get('www-authenticate'),
        contentType: res.headers.get('content-type'),
      },
      viaProvider: providerEvents.get(server)! > before,
    };
  }

  it.each(['token', 'introspection'] as const)('%s: every request gets the provider\'s answer, and only the plain case skips the provider', async (kind) => {
    const cases = kind === 'token' ? tokenCases() : introspectionCases();
    const statuses = new Set<number>();
    for (const c of cases) {
      const [a, b] = [await answer(fast, c), await answer(slow, c)];
      expect(a.answer, c.name).toEqual(b.answer);
      statuses.add(a.answer.status);
      if (c.fast) expect(a.viaProvider, `${c.name}: answered by the fast path`).toBe(false);
      // Only the answers the provider signals by an event can show it answered.
      if (b.viaProvider) expect(a.viaProvider, `${c.name}: left to the provider`).toBe(!c.fast);
    }
    // Tokens and errors of both kinds were compared.
    expect([...statuses].sort()).toEqual([200, 400, 401]);
  });

  it('introspection: an expired token is inactive on both paths', async () => {
    for (const server of [fast, slow]) server.clock.advance(3600_000);
    const c = introspectionCases()[0];
    const [a, b] = [await answer(fast, c), await answer(slow, c)];
    expect(a.answer).toEqual(b.answer);
    expect(a.answer.json).toEqual({ active: false });
    expect(a.viaProvider).toBe(false);
  });
});

describe('fast paths on the memory store', () => {
  let server: TestServer;
  let providerEvents = 0;

  beforeAll(async () => {
    server = await startTestServer({ store: 'memory' });
    await server.deps.clients.save(clients(apiScopesOf(server.deps.scopeCatalog))[0].metadata, SECRET);
    server.running.app.providers.current().on('grant.success' as never, () => providerEvents++);
  });
  afterAll(() => server?.close());

  // Nothing there waits on the network before the fast path, so the body of a request that
  // came in one read is parsed a moment after the app already has the request.
  it('answers a plain client_credentials request without the provider', async () => {
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: AS_M2M, body: 'grant_type=client_credentials' });
      expect(res.status).toBe(200);
    }
    expect(providerEvents).toBe(0);
    // A request the fast path leaves alone still reaches the provider, body intact.
    const res = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: AS_M2M, body: 'grant_type=client_credentials&foo=bar' });
    expect(res.status).toBe(200);
    expect(providerEvents).toBe(1);
  });
});
