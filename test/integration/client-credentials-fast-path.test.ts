import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeJwt, decodeProtectedHeader } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { apiScopesOf } from '../../src/domain/scopes.ts';
import type { ClientMetadata } from '../../src/domain/clients.ts';

/**
 * The client_credentials fast path must answer exactly as the provider does. Two servers,
 * one with TOKEN_FAST_PATH on and one with it off, hold the same clients; every request
 * below goes to both and the answers are compared (tokens by their claims). The provider
 * emits grant.success from its own token endpoint only, which shows which path answered.
 */
const SECRET = 'Sec ret:+%/é-not-ascii'.replace('é', 'e');
const ODD_SECRET = 'a b+c%d:e/f?g=h&i';

function clients(scopes: string[]): { metadata: ClientMetadata; secret: string }[] {
  const base = { response_types: [], redirect_uris: [], grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic' };
  return [
    { metadata: { ...base, client_id: 'm2m', scope: scopes.join(' ') }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-narrow', scope: scopes[0] }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-odd', scope: scopes.join(' ') }, secret: ODD_SECRET },
    { metadata: { ...base, client_id: 'm2m-post', token_endpoint_auth_method: 'client_secret_post', scope: scopes.join(' ') }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-expired', client_secret_expires_at: 1_000_000_000, scope: scopes.join(' ') }, secret: SECRET },
    { metadata: { ...base, client_id: 'm2m-dpop', dpop_bound_access_tokens: true, scope: scopes.join(' ') }, secret: SECRET },
    { metadata: { ...base, client_id: 'web-only', grant_types: ['authorization_code'], response_types: ['code'], redirect_uris: ['https://app.example/cb'], scope: scopes.join(' ') }, secret: SECRET },
  ];
}

const audienceOf = (server: TestServer): string => server.deps.config.apiAudience ?? server.deps.config.publicUrl;
const form = (id: string, secret: string) => `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

interface Case {
  name: string;
  headers?: Record<string, string>;
  body: string;
  /** The fast path answers this one itself. */
  fast: boolean;
}

describe('client_credentials fast path', () => {
  let fast: TestServer;
  let slow: TestServer;
  let scopes: string[];
  const grants = new Map<TestServer, number>();

  beforeAll(async () => {
    [fast, slow] = await Promise.all([startTestServer(), startTestServer({ config: { tokenFastPath: false } })]);
    scopes = apiScopesOf(fast.deps.scopeCatalog);
    for (const server of [fast, slow]) {
      for (const c of clients(scopes)) await server.deps.clients.save(c.metadata, c.secret);
      grants.set(server, 0);
      server.running.app.providers.current().on('grant.success', () => grants.set(server, grants.get(server)! + 1));
    }
  });
  afterAll(async () => {
    await Promise.all([fast?.close(), slow?.close()]);
  });

  const cases = (): Case[] => {
    const basic = { authorization: form('m2m', SECRET) };
    const formType = { 'content-type': 'application/x-www-form-urlencoded' };
    const ok = { ...formType, ...basic };
    return [
      { name: 'one scope', headers: ok, body: `grant_type=client_credentials&scope=${scopes[0]}`, fast: true },
      { name: 'every API scope', headers: ok, body: `grant_type=client_credentials&scope=${encodeURIComponent(scopes.join(' '))}`, fast: true },
      { name: 'no scope', headers: ok, body: 'grant_type=client_credentials', fast: true },
      { name: 'a scope twice', headers: ok, body: `grant_type=client_credentials&scope=${scopes[0]}+${scopes[0]}`, fast: true },
      { name: 'charset=UTF-8', headers: { ...basic, 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' }, body: 'grant_type=client_credentials', fast: true },
      { name: 'lower-case basic scheme', headers: { ...formType, authorization: form('m2m', SECRET).replace('Basic', 'basic') }, body: 'grant_type=client_credentials', fast: true },
      { name: 'secret with reserved characters', headers: { ...formType, authorization: form('m2m-odd', ODD_SECRET) }, body: 'grant_type=client_credentials', fast: true },
      { name: 'secret with a raw colon and plus', headers: { ...formType, authorization: `Basic ${Buffer.from(`m2m-odd:${ODD_SECRET}`).toString('base64')}` }, body: 'grant_type=client_credentials', fast: false },
      { name: 'unknown scope', headers: ok, body: 'grant_type=client_credentials&scope=no.such.scope', fast: false },
      { name: 'scope the client may not ask for', headers: { ...formType, authorization: form('m2m-narrow', SECRET) }, body: `grant_type=client_credentials&scope=${encodeURIComponent(scopes.join(' '))}`, fast: false },
      { name: 'empty scope', headers: ok, body: 'grant_type=client_credentials&scope=', fast: false },
      { name: 'scope with a double space', headers: ok, body: `grant_type=client_credentials&scope=${scopes[0]}%20%20${scopes[0]}`, fast: false },
      { name: 'wrong secret', headers: { ...formType, authorization: form('m2m', 'wrong') }, body: 'grant_type=client_credentials', fast: false },
      { name: 'unknown client', headers: { ...formType, authorization: form('nobody', SECRET) }, body: 'grant_type=client_credentials', fast: false },
      { name: 'empty secret', headers: { ...formType, authorization: `Basic ${Buffer.from('m2m:').toString('base64')}` }, body: 'grant_type=client_credentials', fast: false },
      { name: 'bad base64', headers: { ...formType, authorization: 'Basic bTJtOnNlY3JldA=' }, body: 'grant_type=client_credentials', fast: false },
      { name: 'client_secret_post client over Basic', headers: { ...formType, authorization: form('m2m-post', SECRET) }, body: 'grant_type=client_credentials', fast: false },
      { name: 'expired secret', headers: { ...formType, authorization: form('m2m-expired', SECRET) }, body: 'grant_type=client_credentials', fast: false },
      { name: 'DPoP-bound client without a proof', headers: { ...formType, authorization: form('m2m-dpop', SECRET) }, body: 'grant_type=client_credentials', fast: false },
      { name: 'grant not allowed', headers: { ...formType, authorization: form('web-only', SECRET) }, body: 'grant_type=client_credentials', fast: false },
      { name: 'grant_type twice', headers: ok, body: 'grant_type=client_credentials&grant_type=client_credentials', fast: false },
      { name: 'client_id in the body too', headers: ok, body: 'grant_type=client_credentials&client_id=m2m', fast: false },
      { name: 'client_secret in the body too', headers: ok, body: `grant_type=client_credentials&client_secret=${encodeURIComponent(SECRET)}`, fast: false },
      { name: 'explicit resource', headers: ok, body: `grant_type=client_credentials&resource=${encodeURIComponent('AUDIENCE')}`, fast: false },
      { name: 'unknown parameter', headers: ok, body: 'grant_type=client_credentials&foo=bar', fast: false },
      { name: 'other grant', headers: ok, body: 'grant_type=password&username=a&password=b', fast: false },
      { name: 'DPoP header', headers: { ...ok, dpop: 'not-a-proof' }, body: 'grant_type=client_credentials', fast: false },
      { name: 'Origin header', headers: { ...ok, origin: 'https://elsewhere.example' }, body: 'grant_type=client_credentials', fast: false },
      { name: 'JSON body', headers: { ...basic, 'content-type': 'application/json' }, body: '{"grant_type":"client_credentials"}', fast: false },
      { name: 'other charset', headers: { ...basic, 'content-type': 'application/x-www-form-urlencoded; charset=iso-8859-1' }, body: 'grant_type=client_credentials', fast: false },
    ];
  };

  /** The answer with what legitimately differs between two servers (issuer URL, ids, times) taken out. */
  async function answer(server: TestServer, c: Case) {
    const before = grants.get(server)!;
    const body = c.body.replace(encodeURIComponent('AUDIENCE'), encodeURIComponent(audienceOf(server)));
    const res = await fetch(`${server.url}/oauth/token`, { method: 'POST', headers: c.headers, body });
    const text = (await res.text()).replaceAll(server.url, 'ISSUER');
    const json = JSON.parse(text) as Record<string, unknown>;
    let token: Record<string, unknown> | undefined;
    if (typeof json.access_token === 'string') {
      const claims = decodeJwt(json.access_token);
      expect(claims.iss).toBe(server.url);
      expect(claims.exp! - claims.iat!).toBe(json.expires_in);
      const { jti, iat, exp, iss, aud, ...rest } = claims;
      expect(typeof jti).toBe('string');
      token = { header: { ...decodeProtectedHeader(json.access_token), kid: 'KID' }, aud: aud === audienceOf(server) ? 'AUDIENCE' : aud, claimNames: Object.keys(claims).sort(), ...rest };
      json.access_token = 'TOKEN';
    }
    delete json.request_id;
    const header = (name: string) => res.headers.get(name)?.replaceAll(server.url, 'ISSUER') ?? null;
    return {
      answer: { status: res.status, json, token, cacheControl: header('cache-control'), pragma: header('pragma'), wwwAuthenticate: header('www-authenticate'), contentType: header('content-type') },
      viaProvider: grants.get(server)! > before,
    };
  }

  it('answers every request exactly as the provider does, and takes only the common case itself', async () => {
    for (const c of cases()) {
      const [a, b] = [await answer(fast, c), await answer(slow, c)];
      expect(a.answer, c.name).toEqual(b.answer);
      expect(b.viaProvider, `${c.name}: the provider answers everything with the fast path off`).toBe(a.answer.status === 200);
      expect({ case: c.name, fastPath: !a.viaProvider && a.answer.status === 200 }).toEqual({ case: c.name, fastPath: c.fast });
    }
    // Both kinds of answer were compared: tokens and errors.
    const statuses = new Set((await Promise.all(cases().map(async (c) => (await answer(slow, c)).answer.status))));
    expect([...statuses].sort()).toEqual(expect.arrayContaining([200, 400, 401]));
  });
});
