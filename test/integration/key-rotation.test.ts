import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodeProtectedHeader } from 'jose';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { longestTokenLifetimeMs } from '../../src/deps.ts';

describe('signing key rotation across instances', () => {
  let a: TestServer;
  let b: TestServer;
  const basic = (s: TestServer) => `Basic ${Buffer.from(`${s.demoClient.client_id}:${s.demoClient.client_secret}`).toString('base64')}`;

  beforeAll(async () => {
    const prefix = `rot${randomAlphanumeric(6)}:`;
    a = await startTestServer({ prefix });
    b = await startTestServer({ prefix, config: { publicUrl: a.url } });
  });
  afterAll(async () => {
    await b?.close();
    await a?.close();
  });

  const clientCredentials = async (server: TestServer) => {
    const res = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: basic(a), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
    });
    return ((await res.json()) as { access_token: string }).access_token;
  };
  const active = async (server: TestServer, token: string) => {
    const res = await fetch(`${server.url}/oauth/introspect`, {
      method: 'POST',
      headers: { authorization: basic(a), 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ token }),
    });
    return ((await res.json()) as { active: boolean }).active;
  };
  const jwksKids = async (server: TestServer) =>
    ((await (await fetch(`${server.url}/oauth/jwks`)).json()) as { keys: { kid: string }[] }).keys.map((k) => k.kid);

  it('signs with the new key everywhere and keeps the old one published until it retires', async () => {
    const before = await clientCredentials(a);
    const oldKid = decodeProtectedHeader(before).kid!;

    await a.deps.signingKeys.rotate(longestTokenLifetimeMs(a.deps.config));
    // Each instance notices on its refresh timer; here we do not wait for it.
    await Promise.all([a.deps.keyRing.refresh(), b.deps.keyRing.refresh()]);

    const afterA = await clientCredentials(a);
    const afterB = await clientCredentials(b);
    const newKid = decodeProtectedHeader(afterA).kid!;
    expect(newKid).not.toBe(oldKid);
    expect(decodeProtectedHeader(afterB).kid).toBe(newKid);
    for (const server of [a, b]) {
      const kids = await jwksKids(server);
      expect(kids).toContain(oldKid);
      expect(kids).toContain(newKid);
      expect(await active(server, before)).toBe(true);
      expect(await active(server, afterA)).toBe(true);
    }

    // Once every token the old keys signed has expired, they leave the JWKS.
    a.clock.advance(longestTokenLifetimeMs(a.deps.config) + 1000);
    b.clock.advance(longestTokenLifetimeMs(a.deps.config) + 1000);
    await Promise.all([a.deps.keyRing.refresh(), b.deps.keyRing.refresh()]);
    expect(await jwksKids(b)).not.toContain(oldKid);
    expect(await active(b, before)).toBe(false);
  });

  it('keeps both new generations when two rotations run at once (e.g. a CLI cron on two hosts)', async () => {
    const start = await a.deps.signingKeys.load();
    const retireAfter = longestTokenLifetimeMs(a.deps.config);
    const [x, y] = await Promise.all([a.deps.signingKeys.rotate(retireAfter), b.deps.signingKeys.rotate(retireAfter)]);
    const final = await a.deps.signingKeys.load();
    expect(final.version).toBe(start.version + 2);
    const kids = final.keys.map((k) => k.jwk.kid);
    // Whatever either rotation handed out (and its instance may already sign with) is still in the set.
    for (const set of [x, y]) for (const key of set.keys) expect(kids).toContain(key.jwk.kid);
    expect(final.keys.filter((k) => k.retireAt === undefined)).toHaveLength(3);
  });
});
