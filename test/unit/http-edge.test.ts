import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { compareVersions, parseVersion } from '../../src/http/koa-client-version.ts';
import { ipBucket, limitsFor, principalBucket, createRateLimiter } from '../../src/http/rate-limiter.ts';
import { basicClientId } from '../../src/http/koa-rate-limit.ts';
import { nestedDeeperThan } from '../../src/http/koa-body.ts';
import { createMetrics, withAuditMetrics } from '../../src/metrics.ts';
import { createMemoryStore } from '../../src/store/memory-store.ts';
import { createRedisStore } from '../../src/store/redis-store.ts';
import { StoreUnavailableError } from '../../src/store/store.ts';
import { createLogger } from '../../src/logger.ts';
import { createManualClock } from '../../src/clock.ts';
import { freePort } from '../support/redis-server.ts';
import { grantLabel } from '../../src/oidc/provider-edge.ts';

describe('client versions', () => {
  const v = (s: string) => parseVersion(s)!;
  it.each([
    ['1.2.3', '1.2.4', -1], ['1.10.0', '1.9.9', 1], ['2', '2.0.0', 0], ['v2.1', '2.1.0', 0],
    ['2.0.0-rc.1', '2.0.0', -1], ['2.0.0+build.5', '2.0.0', 0], ['3.0.0-beta', '2.9.9', 1],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareVersions(v(a), v(b)))).toBe(sign);
  });
  it.each([[''], ['x'], ['1.2.3.4'], ['1..2'], ['1.2.3 '], ['-1.0'], ['1.0.0-'], ['9999999999.0.0']])('refuses %j', (s) => {
    expect(parseVersion(s)).toBeNull();
  });
});

describe('rate-limit buckets', () => {
  it('an API key counts as itself, any other credential as its subject', () => {
    expect(principalBucket({ type: 'api_key', subject: 'usr_1', scopes: [], credentialId: 'key_9' })).toBe('key:key_9');
    expect(principalBucket({ type: 'user', subject: 'usr_1', scopes: [], credentialId: 'jti-1' })).toBe('user:usr_1');
    expect(principalBucket({ type: 'user', subject: 'usr_1', scopes: [], credentialId: 'jti-2' })).toBe('user:usr_1');
    expect(principalBucket({ type: 'service_account', subject: 'sa_2', scopes: [], credentialId: 'j' })).toBe('service_account:sa_2');
    expect(principalBucket({ type: 'client', subject: 'etl', scopes: [], credentialId: 'j' })).toBe('client:etl');
  });

  it.each([
    ['192.0.2.7', 'ip:192.0.2.7'],
    ['::ffff:192.0.2.7', 'ip:192.0.2.7'],
    ['2001:db8:1:2:aaaa::1', 'ip6:2001:db8:1:2::/64'],
    ['2001:db8:1:2:bbbb::9', 'ip6:2001:db8:1:2::/64'],
    ['not an ip', 'ip:unknown'],
  ])('IP %s → %s', (ip, bucket) => {
    expect(ipBucket(ip)).toBe(bucket);
  });

  it('picks the first client rule, else the first scope rule the caller holds, else the default', () => {
    const base = { perHour: 1000, burst: 100, burstSeconds: 10 };
    const rules = [{ scope: 'admin.users', burst: 5 }, { client: 'etl', perHour: 50_000 }, { scope: 'cmdb.read', perHour: 10 }, { client: 'etl', perHour: 1 }];
    expect(limitsFor(base, rules, { clientId: 'etl', scopes: ['admin.users'] })).toEqual({ perHour: 50_000, burst: 100, burstSeconds: 10 });
    expect(limitsFor(base, rules, { clientId: 'other', scopes: ['cmdb.read', 'admin.users'] })).toEqual({ perHour: 1000, burst: 5, burstSeconds: 10 });
    expect(limitsFor(base, rules, { scopes: ['reports.read'] })).toEqual(base);
    expect(limitsFor(base, [], {})).toEqual(base);
  });

  it.each([
    [`Basic ${Buffer.from('demo-app:secret').toString('base64')}`, 'demo-app'],
    [`basic ${Buffer.from('a%3Ab:s').toString('base64')}`, 'a:b'],
    [`Basic ${Buffer.from('with+space:s').toString('base64')}`, undefined],
    [`Basic ${Buffer.from(':secret').toString('base64')}`, undefined],
    [`Basic ${Buffer.from('no-colon').toString('base64')}`, undefined],
    [`Basic ${Buffer.from(`${'x'.repeat(200)}:s`).toString('base64')}`, undefined],
    [`Basic ${Buffer.from('%E0%A4%A:s').toString('base64')}`, undefined],
    ['Bearer abc', undefined],
    ['Basic !!!', undefined],
    ['', undefined],
  ])('client_id of HTTP Basic %j → %j', (header, id) => {
    expect(basicClientId(header)).toBe(id);
  });
});

describe('JSON depth', () => {
  const deep = (n: number): unknown => (n === 0 ? 1 : [deep(n - 1)]);
  it('measures nesting without recursion', () => {
    expect(nestedDeeperThan({ a: { b: [1, 2, { c: 'x' }] } }, 32)).toBe(false);
    expect(nestedDeeperThan(deep(32), 32)).toBe(false);
    expect(nestedDeeperThan(deep(33), 32)).toBe(true);
    expect(nestedDeeperThan(JSON.parse('['.repeat(100_000) + ']'.repeat(100_000)), 32)).toBe(true);
    expect(nestedDeeperThan(null, 1)).toBe(false);
    expect(nestedDeeperThan('text', 0)).toBe(false);
  });
});

describe('rate limiter', () => {
  const limits = { perHour: 5, burst: 2, burstSeconds: 60 };
  const quiet = () => createLogger('silent');

  it('reports the hourly quota until the burst window is used up, then the burst window', async () => {
    const clock = createManualClock();
    const limiter = createRateLimiter({ store: createMemoryStore(clock), clock, logger: quiet(), metrics: createMetrics({ defaultMetrics: false }), failOpen: true });
    const first = await limiter.check('k', limits);
    expect(first).toMatchObject({ allowed: true, degraded: false, counted: true, state: { window: 'hour', limit: 5, remaining: 4 } });
    const second = await limiter.check('k', limits);
    expect(second.state).toMatchObject({ window: 'burst', limit: 2, remaining: 0 });
    const third = await limiter.check('k', limits);
    expect(third).toMatchObject({ allowed: false, counted: true, state: { window: 'burst', remaining: 0 } });
    // Known to be refused now: answered from memory, so nothing was counted (and nothing may be taken back).
    expect(await limiter.check('k', limits)).toMatchObject({ allowed: false, counted: false });
    const headers = limiter.headers(third.state);
    expect(Number(headers['X-RateLimit-Reset-After'])).toBeGreaterThanOrEqual(1);
    expect(Number(headers['X-RateLimit-Reset-After'])).toBeLessThanOrEqual(60);
    expect(Number(headers['X-RateLimit-Reset'])).toBe(Math.ceil((clock.now() + third.state.resetMs) / 1000));
    // peek counts nothing
    expect((await limiter.peek('other', limits)).state).toMatchObject({ window: 'hour', remaining: 5 });
    expect((await limiter.peek('other', limits)).state).toMatchObject({ window: 'hour', remaining: 5 });
    expect((await limiter.peek('k', limits)).allowed).toBe(false);
  });

  it('with the counter store out of reach: fails open to per-instance counters (logged once) or closed with StoreUnavailableError', async () => {
    const lines: Record<string, unknown>[] = [];
    const logger = createLogger('info', new Writable({ write(chunk, _e, done) { lines.push(JSON.parse(String(chunk))); done(); } }));
    const store = createRedisStore({ url: `redis://127.0.0.1:${await freePort()}`, prefix: 'unit:' });
    const clock = createManualClock();
    const metrics = createMetrics({ defaultMetrics: false });
    try {
      const open = createRateLimiter({ store, clock, logger, metrics, failOpen: true });
      const results = [];
      for (let i = 0; i < 3; i++) results.push(await open.check('k', limits));
      expect(results.map((r) => [r.allowed, r.degraded])).toEqual([[true, true], [true, true], [false, true]]);
      expect(lines.filter((l) => l.msg === 'rate-limit counters unreachable')).toHaveLength(1);
      expect(await metrics.registry.getSingleMetricAsString('nsa_rate_limit_store_errors_total')).toMatch(/ 3$/m);

      const closed = createRateLimiter({ store, clock, logger, metrics, failOpen: false });
      await expect(closed.check('k', limits)).rejects.toBeInstanceOf(StoreUnavailableError);
    } finally {
      await store.close();
    }
  });
});

describe('metrics', () => {
  it('counts audit events, and login failures by channel', async () => {
    const metrics = createMetrics({ defaultMetrics: false });
    const recorded: unknown[] = [];
    const audit = withAuditMetrics({ record: async (e: { type: string; outcome: string; details?: Record<string, string> }) => { recorded.push(e); } }, metrics);
    await audit.record({ type: 'login.failure', outcome: 'failure', details: { channel: 'api' } });
    await audit.record({ type: 'login.failure', outcome: 'failure', details: { channel: '<script>' } });
    await audit.record({ type: 'login.success', outcome: 'success' });
    expect(recorded).toHaveLength(3);
    const text = await metrics.registry.metrics();
    expect(text).toContain('nsa_login_failures_total{channel="api"} 1');
    expect(text).toContain('nsa_login_failures_total{channel="other"} 1');
    expect(text).toContain('nsa_audit_events_total{type="login.success",outcome="success"} 1');
  });

  it.each([
    ['authorization_code', 'authorization_code'],
    ['authorization_code refresh_token', 'refresh_token'],
    ['urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:jwt-bearer'],
    [undefined, 'other'],
    ['implicit "quoted"}', 'other'],
  ])('labels tokens of gty %j as %j', (gty, label) => {
    expect(grantLabel(gty)).toBe(label);
  });

  it('keeps each server on a registry of its own', async () => {
    const a = createMetrics({ defaultMetrics: false });
    const b = createMetrics({ defaultMetrics: false });
    a.tokensIssued.inc({ grant_type: 'client_credentials' });
    expect(await b.registry.metrics()).not.toContain('grant_type="client_credentials"');
  });
});
