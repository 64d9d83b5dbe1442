// Redis taken away during the requests of the newer features: DPoP-bound tokens at /v1 and
// /oauth/userinfo, the browser-endpoint rate limit (fail open and fail closed), the consent
// policy check and the consent form, the device-code form, and token issue (the JWT
// customizer's reads). The product rule: a 503 (the contract's JSON on /v1 and /oauth, a
// readable page on HTML pages), never a 500, a hang or a crash, and the same process serves
// again once Redis is back.
//
// Three ways of taking Redis away:
// - `down`: Redis is killed (SIGKILL) before the request is sent;
// - `killedAt`: the RESP proxy (test/support/resp-proxy.ts) freezes the connection at one
//   exact command of the request, then Redis is killed: everything the request did before
//   that command happened, that command and everything after it fail;
// - `failsAt`: only that one command fails, with the error a Redis answers while it loads
//   its data after a restart (LOADING), while every other command is served: the store
//   failure reaches exactly the code under test (the DPoP jti's SET NX, the consent check's
//   user read...), not an earlier read of the same request.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createHash, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import * as oidc from 'openid-client';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';
import { startRedisServer, type RedisServer } from '../support/redis-server.ts';
import { startRespProxy, type RespProxy } from '../support/resp-proxy.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, demoClientConfig, dpopCodeFlowToken, type TestUser } from '../support/user-token.ts';
import { CookieJar, follow, formFields, request, signInThroughForms, submit, type FormPage } from '../support/form-login.ts';
import { authorizeUrl, demoBasic } from '../support/attack.ts';
import { postForm } from '../support/service-account.ts';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Longer than anything a healthy answer or a 503 after the 3 s command timeout takes: past it, the request hangs. */
const HANG_MS = 15_000;

interface Answer {
  status: number;
  headers: Headers;
  text: string;
  body: any;
  contentType: string;
  ms: number;
}

async function answerOf(response: Promise<Response>, started = Date.now()): Promise<Answer> {
  const res = await response;
  const text = await res.text();
  let body: any = text;
  try {
    body = JSON.parse(text);
  } catch {
    // a page
  }
  return { status: res.status, headers: res.headers, text, body, contentType: res.headers.get('content-type') ?? '', ms: Date.now() - started };
}

/** A request that fails the test, instead of waiting for ever, when the server holds it past HANG_MS. */
function send(url: string, init: RequestInit = {}, jar?: CookieJar): Promise<Answer> {
  const started = Date.now();
  const withTimeout: RequestInit = { redirect: 'manual', ...init, signal: AbortSignal.timeout(HANG_MS) };
  const response = jar ? request(jar, url, withTimeout) : fetch(url, withTimeout);
  return answerOf(response.catch((err: Error) => {
    throw new Error(`${init.method ?? 'GET'} ${url}: no answer within ${HANG_MS} ms (${err.name}: ${err.message})`);
  }), started);
}

/** The contract's /v1 503. */
function expectV1Outage(a: Answer, requestId: string, name: string): void {
  expect({ name, status: a.status, body: a.body }).toEqual({ name, status: 503, body: { error: 'Service temporarily unavailable', code: 'SERVICE_UNAVAILABLE', request_id: requestId } });
  expect(a.headers.get('retry-after'), name).toBe('5');
}

/** RFC 6749's form of the 503, under /oauth. */
function expectOAuthOutage(a: Answer, requestId: string, name: string): void {
  expect({ name, status: a.status, body: a.body }).toEqual({ name, status: 503, body: { error: 'temporarily_unavailable', error_description: 'Service temporarily unavailable', request_id: requestId } });
  expect(a.headers.get('retry-after'), name).toBe('5');
}

/**
 * A page a person can read: HTML, says to try again, names the request. Soft: a test that
 * meets a wrong answer here still goes on to check that the service recovers.
 */
function expectOutagePage(a: Answer, requestId: string, name: string): void {
  expect.soft({ name, status: a.status, contentType: a.contentType }, a.text.slice(0, 600)).toEqual({ name, status: 503, contentType: expect.stringMatching(/^text\/html/) });
  expect.soft(a.text, name).toContain('temporarily unavailable');
  expect.soft(a.text, name).toContain(requestId);
  expect.soft(a.headers.get('retry-after'), name).toBe('5');
}

/** An answer in a word: its status, and whether it is the outage page, another page, or JSON. */
function shapeOf(a: Answer): string {
  if (!/^text\/html/.test(a.contentType)) return `${a.status} json`;
  return `${a.status} ${a.text.includes('temporarily unavailable') ? 'outage page' : 'other page'}`;
}

// ---------------------------------------------------------------------------------------
// DPoP keys and proofs (as test/integration/dpop-resources.test.ts builds them).

interface DpopKey { privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }
async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256', { extractable: true });
  const { kty, crv, x, y } = await exportJWK(publicKey);
  return { privateKey, publicKey, jwk: { kty, crv, x, y } as JWK };
}
const athOf = (token: string) => createHash('sha256').update(token).digest('base64url');

// Each kill mid-command waits out the 3 s command timeout, then Redis restarts from its AOF.
describe('Redis taken away during the requests of the new paths', { timeout: 120_000 }, () => {
  let redis: RedisServer;
  let proxy: RespProxy;
  /** Behind the RESP proxy, so its commands can be stopped or failed one at a time. */
  let server: TestServer;
  /** RATE_LIMIT_FAIL_OPEN=false, on Redis directly. */
  let failClosed: TestServer;
  /** The default (fail open), with a burst of 3 per window, on Redis directly. */
  let tight: TestServer;
  const logs: Record<string, unknown>[] = [];
  const prefix = () => server.deps.config.redisPrefix;

  const sink = (into: Record<string, unknown>[], server: string) => new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n').filter(Boolean)) into.push({ ...JSON.parse(line), server });
      done();
    },
  });
  const TV_CLIENT = {
    client_id: 'tv-app', client_name: 'TV', redirect_uris: [], response_types: [], token_endpoint_auth_method: 'none',
    grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], scope: 'openid cmdb.read',
  };

  beforeAll(async () => {
    // AOF, so that what was stored before the kill (users, clients, sessions, grants) is there after it.
    redis = await startRedisServer({ args: ['--appendonly', 'yes', '--appendfsync', 'always'] });
    proxy = await startRespProxy({ host: redis.host, port: redis.port });
    server = await startTestServer({ redisUrl: proxy.url, logDestination: sink(logs, 'main'), config: { logLevel: 'info' } });
    failClosed = await startTestServer({ redisUrl: redis.url, logDestination: sink(logs, 'fail-closed'), config: { logLevel: 'info', rateLimitFailOpen: false } });
    tight = await startTestServer({ redisUrl: redis.url, logDestination: sink(logs, 'tight'), config: { logLevel: 'info', rateLimitBurst: 3, rateLimitBurstSeconds: 60 } });
    for (const s of [server, failClosed, tight]) await s.deps.clients.save(TV_CLIENT as never);
  });
  afterAll(async () => {
    // OUTAGE_LOG_FILE=path keeps the servers' log lines (which middleware answered, with stacks) for a look after the run.
    if (process.env.OUTAGE_LOG_FILE) (await import('node:fs')).writeFileSync(process.env.OUTAGE_LOG_FILE, logs.map((l) => JSON.stringify(l)).join('\n'));
    await Promise.all([server?.close(), failClosed?.close(), tight?.close()]);
    await proxy?.close();
    await redis?.stop();
  });

  /** Every server ready again (its Redis connection back and its checks passing). */
  async function untilReady(): Promise<void> {
    const deadline = Date.now() + 20_000;
    for (const s of [server, failClosed, tight]) {
      while ((await fetch(`${s.url}/readyz`)).status !== 200) {
        if (Date.now() > deadline) throw new Error(`${s.url} not ready 20 s after Redis came back`);
        await sleep(100);
      }
    }
    proxy.takeBatches();
  }

  /** Redis killed before `action` runs (once the servers have noticed), started again (from its AOF) after. */
  async function down<T>(action: () => Promise<T>): Promise<T> {
    await redis.kill();
    try {
      for (const s of [server, failClosed, tight]) while ((await fetch(`${s.url}/readyz`)).status !== 503) await sleep(20);
      // Its subscription (the client cache's lifeline) is a connection of its own: let it notice too.
      await sleep(250);
      return await action();
    } finally {
      await redis.restart();
      await untilReady();
    }
  }

  /**
   * Sends the request; when it reaches the first command `match` accepts, that connection
   * is frozen (the command never reaches Redis) and Redis is killed. Resolves with the answer.
   */
  async function killedAt(match: (args: string[]) => boolean, sendRequest: () => Promise<Answer>, name: string): Promise<Answer> {
    let fired = false;
    const trap = proxy.trap({ match, when: 'before' }).then((args) => {
      fired = true;
      return args;
    });
    const answer = sendRequest();
    try {
      const first = await Promise.race([trap, answer.then((a) => a, (err: Error) => err)]);
      if (!fired) {
        proxy.trap({ match: () => false, when: 'before' });
        throw new Error(`${name}: the request finished before reaching the command (${first instanceof Error ? first.message : `${(first as Answer).status} ${(first as Answer).text.slice(0, 300)}`})`);
      }
      await redis.kill();
      return await answer;
    } finally {
      await redis.restart();
      await untilReady();
    }
  }

  /** Sends the request with exactly the first command `match` accepts failing (LOADING); Redis stays up. */
  async function failsAt(match: (args: string[]) => boolean, sendRequest: () => Promise<Answer>, name: string): Promise<Answer> {
    let fired = false;
    const failed = proxy.failNext(match).then(() => {
      fired = true;
    });
    const answer = await sendRequest();
    await Promise.race([failed, sleep(50)]);
    proxy.disarm();
    if (!fired) throw new Error(`${name}: the request never sent the command (${answer.status} ${answer.text.slice(0, 300)})`);
    return answer;
  }

  /** The n-th command (1-based) that `match` accepts. */
  const nth = (n: number, match: (args: string[]) => boolean) => {
    let seen = 0;
    return (args: string[]) => match(args) && ++seen === n;
  };
  const command = (name: string, keyPart: string) => (args: string[]) => args[0] === name && (args[1] ?? '').startsWith(`${prefix()}${keyPart}`);
  const serverErrorLogs = (requestId: string) => logs.filter((l) => l.request_id === requestId && (l.msg === 'request failed' || l.msg === 'provider server error' || l.msg === 'interaction failed'));

  // -------------------------------------------------------------------------------------
  describe('1. DPoP-bound tokens at /v1 and /oauth/userinfo', () => {
    const V1_PATH = '/v1/admin/clients';
    let key: DpopKey;
    let clientToken: string;
    let userKey: DpopKey;
    let userToken: string;

    const proof = (k: DpopKey, method: string, path: string, token: string | null) =>
      new SignJWT({ jti: randomUUID(), htm: method, htu: `${server.url}${path}`, iat: Math.floor(server.clock.now() / 1000), ...(token ? { ath: athOf(token) } : {}) })
        .setProtectedHeader({ typ: 'dpop+jwt', alg: 'ES256', jwk: k.jwk } as never).sign(k.privateKey);
    const v1 = async (requestId: string) =>
      send(`${server.url}${V1_PATH}`, { headers: { authorization: `DPoP ${clientToken}`, dpop: await proof(key, 'GET', V1_PATH, clientToken), 'x-request-id': requestId } });
    const userinfo = async (requestId: string) =>
      send(`${server.url}/oauth/userinfo`, { headers: { authorization: `DPoP ${userToken}`, dpop: await proof(userKey, 'GET', '/oauth/userinfo', userToken), 'x-request-id': requestId } });
    /** The jti's SET NX (in the provider's ReplayDetection key space). */
    const jtiSpend = (args: string[]) => args[0] === 'set' && args[1].startsWith(`${prefix()}oidc:ReplayDetection:`) && args.includes('NX');

    beforeAll(async () => {
      key = await dpopKey();
      const issued = await postForm(server, '/oauth/token', { grant_type: 'client_credentials', scope: 'admin.settings' }, { authorization: demoBasic(server), dpop: await proof(key, 'POST', '/oauth/token', null) });
      expect(issued.status, issued.text).toBe(200);
      expect(issued.body.token_type).toBe('DPoP');
      clientToken = issued.body.access_token;

      const user = await createTestUser(server, [], 'dpop-outage');
      userKey = await dpopKey();
      userToken = await dpopCodeFlowToken(server, user, { privateKey: userKey.privateKey, publicKey: userKey.publicKey });
      expect((await v1('dpop-warm')).status).toBe(200);
      expect((await userinfo('dpop-warm-ui')).status).toBe(200);
    });

    it('/v1: Redis down, killed at the jti SET NX, or only the SET NX failing: 503 in the contract shape; serves again after', async () => {
      expectV1Outage(await down(() => v1('dpop-v1-down')), 'dpop-v1-down', 'Redis down');
      expect((await v1('dpop-v1-after-down')).status).toBe(200);

      expectV1Outage(await killedAt(jtiSpend, () => v1('dpop-v1-killed'), 'killed at SET NX'), 'dpop-v1-killed', 'killed at the jti SET NX');
      expect((await v1('dpop-v1-after-kill')).status).toBe(200);

      // The token's own checks (deny-list, grant, client) pass; only spending the jti fails:
      // neither a 200 (the proof would be replayable) nor a 401 (the proof was fine).
      const failed = await failsAt(jtiSpend, () => v1('dpop-v1-setnx'), 'SET NX fails');
      expectV1Outage(failed, 'dpop-v1-setnx', 'only the jti SET NX fails');
      expect(serverErrorLogs('dpop-v1-setnx')).toHaveLength(1);
      expect((await v1('dpop-v1-after-setnx')).status).toBe(200);
    });

    it('/oauth/userinfo: the same, in RFC 6749 form', async () => {
      expectOAuthOutage(await down(() => userinfo('dpop-ui-down')), 'dpop-ui-down', 'Redis down');
      expect((await userinfo('dpop-ui-after-down')).status).toBe(200);

      expectOAuthOutage(await killedAt(jtiSpend, () => userinfo('dpop-ui-killed'), 'killed at SET NX'), 'dpop-ui-killed', 'killed at the jti SET NX');
      expect((await userinfo('dpop-ui-after-kill')).status).toBe(200);

      expectOAuthOutage(await failsAt(jtiSpend, () => userinfo('dpop-ui-setnx'), 'SET NX fails'), 'dpop-ui-setnx', 'only the jti SET NX fails');
      const after = await userinfo('dpop-ui-after-setnx');
      expect(after.status, after.text).toBe(200);
      expect(after.body.sub).toBeTruthy();
    });
  });

  // -------------------------------------------------------------------------------------
  describe('2. the browser-endpoint rate limit', () => {
    /** The four kinds of limited browser request, each as a page would send it. */
    /** The sign-in form of a real interaction (its cookie in the jar), to post later. */
    async function loginForm(target: TestServer): Promise<{ jar: CookieJar; action: string; fields: Record<string, string> }> {
      const jar = new CookieJar();
      const page = (await follow(jar, authorizeUrl(target), target.url)).page!;
      const form = formFields(page.html, '/login')!;
      return { jar, action: new URL(form.action, page.url).toString(), fields: { ...form.fields, email: 'nobody@example.test', password: 'wrong-password' } };
    }
    const browserRequests = (target: TestServer, requestId: string | ((name: string) => string), login?: Awaited<ReturnType<typeof loginForm>>): Record<string, () => Promise<Answer>> => {
      const idOf = (name: string) => (typeof requestId === 'string' ? requestId : requestId(name));
      const page = (name: string) => ({ accept: 'text/html,application/xhtml+xml', 'x-request-id': idOf(name) });
      const form = (name: string) => ({ ...page(name), 'content-type': 'application/x-www-form-urlencoded' });
      return {
        'GET /oauth/authorize': () => send(authorizeUrl(target), { headers: page('GET /oauth/authorize') }),
        'POST /interaction/:uid/login': () => (login
          ? send(login.action, { method: 'POST', headers: form('POST /interaction/:uid/login'), body: new URLSearchParams(login.fields) }, login.jar)
          : send(`${target.url}/interaction/AbCdEfGhIjKlMnOpQrStUvWxYz0123456789abcdefg/login`, { method: 'POST', headers: form('POST /interaction/:uid/login'), body: 'csrf=x&email=a%40b.c&password=p' })),
        'POST /oauth/device': () => send(`${target.url}/oauth/device`, { method: 'POST', headers: form('POST /oauth/device'), body: 'xsrf=x&user_code=BCDF-GHJK' }),
        'POST /invite': () => send(`${target.url}/invite`, { method: 'POST', headers: form('POST /invite'), body: `token=inv_${'a'.repeat(43)}&password=Chosen-Password-123&confirm=Chosen-Password-123` }),
      };
    };

    it('RATE_LIMIT_FAIL_OPEN=true: while Redis is down every limited request still gets its own answer (no 500), counted per instance', async () => {
      const login = await loginForm(server);
      const answers = await down(async () => {
        const out: Record<string, Answer> = {};
        for (const [name, go] of Object.entries(browserRequests(server, (n) => `open-${name2id(n)}`, login))) out[name] = await go();
        return out;
      });
      for (const [name, a] of Object.entries(answers)) {
        // Counted by the in-process fallback: the limit headers are there (10 x the hourly quota).
        expect(a.headers.get('x-ratelimit-limit'), name).toBe('10000000');
      }
      // The device form without a session needs no store: the limiter let it through to its own 400 page.
      // Those that need the store answer 503, as pages.
      expect.soft(Object.fromEntries(Object.entries(answers).map(([name, a]) => [name, shapeOf(a)]))).toEqual({
        'GET /oauth/authorize': '503 outage page',
        'POST /interaction/:uid/login': '503 outage page',
        'POST /oauth/device': '400 other page',
        'POST /invite': '503 outage page',
      });
      expect(answers['POST /oauth/device'].text).toContain('This page has expired');
      for (const name of ['GET /oauth/authorize', 'POST /interaction/:uid/login', 'POST /invite']) expectOutagePage(answers[name], `open-${name2id(name)}`, `${name} (fail open)`);
      expect(logs.some((l) => l.server === 'main' && l.msg === 'rate-limit counters reachable again')).toBe(true);
    });

    it('RATE_LIMIT_FAIL_OPEN=true: the per-instance counters still refuse past the burst while Redis is down (429 page), and the shared ones count again after', async () => {
      const statuses = await down(async () => {
        const out: number[] = [];
        for (let i = 0; i < 5; i++) out.push((await browserRequests(tight, `tight-${i}`)['POST /oauth/device']()).status);
        const refused = await browserRequests(tight, 'tight-refused')['POST /interaction/:uid/login']();
        expect(refused.status, refused.text.slice(0, 300)).toBe(429);
        expect(refused.contentType).toMatch(/^text\/html/);
        expect(refused.text).toContain('Too many requests');
        return out;
      });
      expect(statuses).toEqual([400, 400, 400, 429, 429]);
      // Back on the shared counters, which never saw those requests: a burst of 3 again, then 429.
      const after: number[] = [];
      for (let i = 0; i < 4; i++) after.push((await browserRequests(tight, `tight-after-${i}`)['POST /oauth/device']()).status);
      expect(after).toEqual([400, 400, 400, 429]);
      expect(logs.some((l) => l.server === 'tight' && l.msg === 'rate-limit counters unreachable' && l.policy === 'fail open (per-instance counters)')).toBe(true);
    });

    it('RATE_LIMIT_FAIL_OPEN=true: Redis killed at the rate-limit count itself: the request goes on with the fallback count and gets the answer its own store needs give (503 page), not a 500', async () => {
      // EVAL on a connection's first use of the script, EVALSHA after.
      const countBrowser = (args: string[]) => (args[0] === 'evalsha' || args[0] === 'eval') && args.some((a) => a.startsWith(`${prefix()}rl:{browser:`));
      const a = await killedAt(countBrowser, () => browserRequests(server, 'open-killed-count')['GET /oauth/authorize'](), 'killed at the browser count');
      expectOutagePage(a, 'open-killed-count', 'GET /oauth/authorize, killed at its count');
      const device = await killedAt(countBrowser, () => browserRequests(server, 'open-killed-device')['POST /oauth/device'](), 'killed at the browser count');
      expect(device.status, device.text.slice(0, 300)).toBe(400);
      expect((await send(authorizeUrl(server), { headers: { accept: 'text/html' } })).status).toBe(303);
    });

    it('RATE_LIMIT_FAIL_OPEN=false: every limited browser request gets a 503 while Redis is down, as a page where the request is for a page', async () => {
      const login = await loginForm(failClosed);
      const answers = await down(async () => {
        const out: Record<string, Answer> = {};
        for (const [name, go] of Object.entries(browserRequests(failClosed, (n) => `closed-${name2id(n)}`, login))) out[name] = await go();
        return out;
      });
      expect.soft(Object.fromEntries(Object.entries(answers).map(([name, a]) => [name, shapeOf(a)]))).toEqual({
        'GET /oauth/authorize': '503 outage page',
        'POST /interaction/:uid/login': '503 outage page',
        'POST /oauth/device': '503 outage page',
        'POST /invite': '503 outage page',
      });
      for (const [name, a] of Object.entries(answers)) expectOutagePage(a, `closed-${name2id(name)}`, `${name} (fail closed)`);
      // Served again once Redis is back.
      expect((await send(authorizeUrl(failClosed), { headers: { accept: 'text/html' } })).status).toBe(303);
    });
  });

  // -------------------------------------------------------------------------------------
  describe('3. consent: the policy check and the confirm handler', () => {
    /**
     * A user signed in (session cookie in the jar) who allowed the demo client while lacking
     * cmdb.read (withheld), and who holds it now: the next authorization request for it
     * makes the consent check (consent-policy.ts) read the user.
     */
    async function withheldThenHeld(name: string): Promise<{ jar: CookieJar; user: TestUser; userKey: string }> {
      const user = await createTestUser(server, [], name);
      const jar = new CookieJar();
      let step = await follow(jar, authorizeUrl(server), server.url);
      step = await submit(jar, step.page!, '/login', { email: user.email, password: user.password }, server.url);
      step = await submit(jar, step.page!, '/confirm', {}, server.url);
      expect(step.final).toContain('/demo/callback');
      await server.deps.users.update(user.id, (u) => ({ ...u, scopes: ['cmdb.read'] }));
      return { jar, user, userKey: `${prefix()}user:${user.id}` };
    }
    const authorizePage = (jar: CookieJar, requestId: string) => send(authorizeUrl(server), { headers: { accept: 'text/html', 'x-request-id': requestId } }, jar);
    /** The authorization request's reads of the user: findAccount's first, then the consent check's. */
    const consentCheckRead = (userKey: string) => nth(2, (args) => args[0] === 'get' && args[1] === userKey);

    it('the policy check: Redis killed at its user read, or only that read failing: a 503 page; the same request after: consent is asked', async () => {
      const { jar, userKey } = await withheldThenHeld('consent-check');
      const killed = await killedAt(consentCheckRead(userKey), () => authorizePage(jar, 'consent-check-killed'), 'consent check read');
      const failed = await failsAt(consentCheckRead(userKey), () => authorizePage(jar, 'consent-check-failed'), 'consent check read');
      expect.soft({ killed: shapeOf(killed), failed: shapeOf(failed) }).toEqual({ killed: '503 outage page', failed: '503 outage page' });
      expectOutagePage(killed, 'consent-check-killed', 'authorize, killed at the consent check');
      expectOutagePage(failed, 'consent-check-failed', 'authorize, the consent check read failing');

      const after = await authorizePage(jar, 'consent-check-after');
      expect(after.status).toBe(303);
      const consent = await follow(jar, new URL(after.headers.get('location')!, server.url).toString(), server.url);
      expect(consent.page?.html).toContain('/confirm"');
    });

    it('the policy check with Redis down: a 503 page', async () => {
      const { jar } = await withheldThenHeld('consent-down');
      expectOutagePage(await down(() => authorizePage(jar, 'consent-down')), 'consent-down', 'authorize with Redis down');
    });

    /** The consent page of a fresh sign-in, ready to be confirmed. */
    async function consentPage(name: string): Promise<{ jar: CookieJar; page: FormPage; user: TestUser; confirm: (requestId: string) => Promise<Answer> }> {
      const user = await createTestUser(server, ['cmdb.read'], name);
      const jar = new CookieJar();
      let step = await follow(jar, authorizeUrl(server), server.url);
      step = await submit(jar, step.page!, '/login', { email: user.email, password: user.password }, server.url);
      const page = step.page!;
      expect(page.html).toContain('/confirm"');
      const form = formFields(page.html, '/confirm')!;
      const confirm = (requestId: string) => send(new URL(form.action, page.url).toString(), {
        method: 'POST', headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId }, body: new URLSearchParams(form.fields),
      }, jar);
      return { jar, page, user, confirm };
    }

    it('the confirm handler: Redis killed at its user read, its grant write and its interaction write, and with only each of those failing: a 503 page; confirming again after finishes the sign-in', async () => {
      const steps: Record<string, (user: TestUser) => (args: string[]) => boolean> = {
        'user read': (user) => (args) => args[0] === 'get' && args[1] === `${prefix()}user:${user.id}`,
        'grant write': () => command('set', 'oidc:Grant:'),
        'interaction write (interactionResult)': () => command('set', 'oidc:Interaction:'),
      };
      for (const [step, matcher] of Object.entries(steps)) {
        for (const how of ['killed', 'failed'] as const) {
          const name = `${how} at the confirm's ${step}`;
          const id = `confirm-${how}-${name2id(step)}`;
          const { jar, user, confirm } = await consentPage(`confirm-${how}`);
          const a = how === 'killed' ? await killedAt(matcher(user), () => confirm(id), name) : await failsAt(matcher(user), () => confirm(id), name);
          expectOutagePage(a, id, name);
          // The user presses the button again: it goes through.
          const again = await confirm(`${id}-again`);
          expect(again.status, `${name}, again: ${again.text.slice(0, 300)}`).toBe(303);
          const done = await follow(jar, new URL(again.headers.get('location')!, server.url).toString(), server.url);
          expect(done.final, name).toContain('/demo/callback?code=');
        }
      }
    });
  });

  // -------------------------------------------------------------------------------------
  describe('4. the device-code form', () => {
    async function deviceForm(target: TestServer = server): Promise<{ jar: CookieJar; userCode: string; post: (requestId: string) => Promise<Answer> }> {
      const started = await postForm(target, '/oauth/device/auth', { client_id: 'tv-app', scope: 'openid cmdb.read' });
      expect(started.status, started.text).toBe(200);
      const jar = new CookieJar();
      const page = (await follow(jar, `${target.url}/oauth/device`, target.url)).page!;
      const form = formFields(page.html, '/oauth/device')!;
      const post = (requestId: string) => send(new URL(form.action, page.url).toString(), {
        method: 'POST',
        headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
        body: new URLSearchParams({ ...form.fields, user_code: started.body.user_code }),
      }, jar);
      return { jar, userCode: started.body.user_code, post };
    }
    const stillWorks = async (name: string) => {
      const { post } = await deviceForm();
      const ok = await post(`${name}-after`);
      expect(ok.status, `${name}, after: ${ok.text.slice(0, 300)}`).toBe(200);
      expect(ok.text).toContain('Confirm the device');
    };

    it('with a live session and Redis down: a 503 page, not the guard\'s 400 "expired" page; a forged session cookie (nothing to look up) still gets the guard\'s 400', async () => {
      const { post } = await deviceForm();
      const unknownSession = () => send(`${server.url}/oauth/device`, {
        method: 'POST',
        headers: { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded', cookie: '_session=unknown-session-id-0123456789ab; _session.sig=forged', 'x-request-id': 'device-down-forged' },
        body: 'xsrf=forged&user_code=BCDF-GHJK',
      });
      const [live, forged] = await down(async () => [await post('device-down'), await unknownSession()]);
      expectOutagePage(live, 'device-down', 'POST /oauth/device, Redis down');
      // The signature fails, so the provider never asks the store: the guard's page, outage or not.
      expect(shapeOf(forged)).toBe('400 other page');
      expect(forged.text).toContain('This page has expired');
      expect(forged.text).toContain('device-down-forged');
      await stillWorks('device-down');
    });

    it('Redis killed at each store command of the form (session read, user-code lookup, device-code read, session save), or only that command failing: a 503 page each time (never a 500, nor the guard\'s 400); the form works after', async () => {
      const steps: Record<string, (args: string[]) => boolean> = {
        'session read': command('get', 'oidc:Session:'),
        'user-code lookup': command('get', 'oidc:user-code:'),
        'device-code read': command('mget', 'oidc:DeviceCode:'),
        'session save': command('set', 'oidc:Session:'),
      };
      const shapes: Record<string, string> = {};
      const answers: Record<string, [Answer, string]> = {};
      for (const [step, matcher] of Object.entries(steps)) {
        for (const how of ['killed', 'failed'] as const) {
          const name = `${how} at the ${step}`;
          const id = `device-${how}-${name2id(step)}`;
          const { post } = await deviceForm();
          const a = how === 'killed' ? await killedAt(matcher, () => post(id), name) : await failsAt(matcher, () => post(id), name);
          shapes[name] = shapeOf(a);
          answers[name] = [a, id];
        }
      }
      expect.soft(shapes).toEqual(Object.fromEntries(Object.keys(shapes).map((name) => [name, '503 outage page'])));
      for (const [name, [a, id]] of Object.entries(answers)) expectOutagePage(a, id, name);
      await stillWorks('device-steps');
    });
  });

  // -------------------------------------------------------------------------------------
  describe('5. token issue: the JWT customizer (client scopes, the owner\'s scopes) and the audience check', () => {
    let user: TestUser;
    let narrowSecret: string;

    beforeAll(async () => {
      user = await createTestUser(server, ['cmdb.read'], 'token-issue');
      // A client registered for fewer scopes than its grants may name: the customizer filters.
      narrowSecret = `narrow-secret-${randomUUID()}`;
      await server.deps.clients.save({
        client_id: 'narrow-app', redirect_uris: [], response_types: [], token_endpoint_auth_method: 'client_secret_post',
        grant_types: ['client_credentials'], scope: 'cmdb.read',
      } as never, narrowSecret);
    });

    /** A code (and the verifier to redeem it) through the login and consent forms. */
    async function code(): Promise<{ config: oidc.Configuration; callback: URL; verifier: string }> {
      const config = await demoClientConfig(server);
      const verifier = oidc.randomPKCECodeVerifier();
      const url = oidc.buildAuthorizationUrl(config, {
        redirect_uri: server.demoClient.redirect_uri, scope: 'openid offline_access cmdb.read', prompt: 'consent',
        code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
      });
      return { config, callback: new URL(await signInThroughForms(url.toString(), server.url, user)), verifier };
    }
    const redeem = (callback: URL, verifier: string, requestId: string) => send(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: demoBasic(server), 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: callback.searchParams.get('code')!, redirect_uri: server.demoClient.redirect_uri, code_verifier: verifier }),
    });
    const refresh = (refreshToken: string, requestId: string) => send(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: demoBasic(server), 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: refreshToken }),
    });
    const ownerRead = (args: string[]) => args[0] === 'get' && args[1] === `${prefix()}user:${user.id}`;

    it('authorization_code: Redis down, killed at the owner read the customizer uses, or only that read failing: 503 temporarily_unavailable; a new code works after', async () => {
      const a = await code();
      expectOAuthOutage(await down(() => redeem(a.callback, a.verifier, 'code-down')), 'code-down', 'code grant, Redis down');
      const b = await code();
      expectOAuthOutage(await killedAt(ownerRead, () => redeem(b.callback, b.verifier, 'code-killed'), 'owner read'), 'code-killed', 'code grant, killed at the owner read');
      const c = await code();
      expectOAuthOutage(await failsAt(ownerRead, () => redeem(c.callback, c.verifier, 'code-failed'), 'owner read'), 'code-failed', 'code grant, owner read failing');
      const d = await code();
      const ok = await redeem(d.callback, d.verifier, 'code-after');
      expect(ok.status, ok.text).toBe(200);
      expect(ok.body.scope).toContain('cmdb.read');
    });

    it('refresh_token: the same; the refresh token is still good after the outage', async () => {
      const c = await code();
      const first = await redeem(c.callback, c.verifier, 'refresh-setup');
      expect(first.status, first.text).toBe(200);
      const rt = first.body.refresh_token as string;
      expectOAuthOutage(await down(() => refresh(rt, 'refresh-down')), 'refresh-down', 'refresh, Redis down');
      expectOAuthOutage(await failsAt(ownerRead, () => refresh(rt, 'refresh-failed'), 'owner read'), 'refresh-failed', 'refresh, owner read failing');
      expectOAuthOutage(await killedAt(ownerRead, () => refresh(rt, 'refresh-killed'), 'owner read'), 'refresh-killed', 'refresh, killed at the owner read');
      // Nothing was spent: the refresh token still works, and its JWT names what the user holds.
      const ok = await refresh(rt, 'refresh-after');
      expect(ok.status, ok.text).toBe(200);
      const claims = JSON.parse(Buffer.from(ok.body.access_token.split('.')[1], 'base64url').toString());
      expect(claims.scopes).toContain('cmdb.read');
    });

    it('client_credentials through the provider (client_secret_post, a client narrowed by its registration) and introspection (the audience check): 503 with Redis down, served after', async () => {
      const cc = (requestId: string) => send(`${server.url}/oauth/token`, {
        method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
        body: new URLSearchParams({ grant_type: 'client_credentials', client_id: 'narrow-app', client_secret: narrowSecret, scope: 'cmdb.read' }),
      });
      const issued = await cc('cc-before');
      expect(issued.status, issued.text).toBe(200);
      const introspect = (requestId: string) => send(`${server.url}/oauth/introspect`, {
        method: 'POST', headers: { authorization: demoBasic(server), 'content-type': 'application/x-www-form-urlencoded', 'x-request-id': requestId },
        body: new URLSearchParams({ token: issued.body.access_token }),
      });
      const [ccDown, introDown] = await down(async () => [await cc('cc-down'), await introspect('intro-down')]);
      expectOAuthOutage(ccDown, 'cc-down', 'client_credentials, Redis down');
      expectOAuthOutage(introDown, 'intro-down', 'introspection, Redis down');
      expect((await cc('cc-after')).status).toBe(200);
      const intro = await introspect('intro-after');
      expect(intro.status).toBe(200);
      expect(intro.body.active).toBe(true);
    });
  });

  it('no request above was answered 500, and none took longer than the command timeout allows (request log)', async () => {
    await sleep(500); // the logger's buffer
    const requests = logs.filter((l) => l.msg === 'request');
    expect(requests.length).toBeGreaterThan(100);
    const bad = requests.filter((l) => (l.status as number) >= 500 && l.status !== 503);
    expect(bad.map((l) => ({ server: l.server, request_id: l.request_id, method: l.method, path: l.path, status: l.status }))).toEqual([]);
    // A command in flight when Redis dies waits out the 3 s command timeout; nothing waits longer.
    const slow = requests.filter((l) => (l.duration_ms as number) > 5000);
    expect(slow.map((l) => ({ request_id: l.request_id, path: l.path, duration_ms: l.duration_ms }))).toEqual([]);
  });
});

function name2id(name: string): string {
  return name.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
}
