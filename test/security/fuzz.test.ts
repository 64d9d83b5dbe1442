// Property-based fuzzing (fast-check) of every request body the server takes: each /v1
// route with a body, as listed by the server's own OpenAPI document (so new routes are
// fuzzed without touching this file), and the OAuth form endpoints. Properties: never a
// 5xx, never a hang (each request has a deadline), always the contract's error shape
// ({error, code, request_id} on /v1; RFC 6749 {error, error_description?, request_id} under
// /oauth and on the routes that document it), no prototype pollution, and /healthz still answers.
//
// A failure prints fast-check's seed and path; rerun it exactly with
//   FUZZ_SEED=<seed> FUZZ_PATH=<path> npx vitest run test/security/fuzz.test.ts
// and hunt longer with FUZZ_RUNS=20 (twenty times the runs).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { login } from '../support/auth-client.ts';
import { basicAuth, demoBasic } from '../support/attack.ts';
import { errorCodes } from '../../src/errors/app-error.ts';

const REQUEST_DEADLINE_MS = 5000;
/** FUZZ_RUNS multiplies the number of runs, for a longer hunt than CI's. */
const RUN_SCALE = Number(process.env.FUZZ_RUNS ?? 1);
const runs = (numRuns: number) => ({
  numRuns: Math.max(1, Math.round(numRuns * RUN_SCALE)),
  ...(process.env.FUZZ_SEED ? { seed: Number(process.env.FUZZ_SEED) } : {}),
  ...(process.env.FUZZ_PATH ? { path: process.env.FUZZ_PATH } : {}),
  endOnFailure: true,
});

interface Operation {
  method: string;
  /** OpenAPI path, e.g. /v1/admin/users/{id}. */
  path: string;
  contentType: 'application/json' | 'application/x-www-form-urlencoded';
  fields: string[];
  /** The route documents RFC 6749 errors instead of the /v1 shape. */
  oauthErrors: boolean;
}

interface Sent {
  body: string | Uint8Array;
  contentType?: string;
}

// ---- arbitraries -------------------------------------------------------------------------

const hugeString = fc.integer({ min: 1000, max: 70_000 }).map((n) => 'x'.repeat(n));
const nastyString = fc.oneof(
  fc.string(),
  fc.string({ unit: 'grapheme', maxLength: 50 }),
  fc.string({ unit: 'binary', maxLength: 50 }),
  fc.constantFrom('', ' ', '\u0000', '\u202e', '🔑', '\ud800', '%00', '../../etc/passwd', "' OR 1=1 --", '<script>alert(1)</script>', '${7*7}', 'nsa_live_', 'eyJhbGciOiJub25lIn0.e30.', 'a@b.c', 'usr_', 'admin.users', 'cmdb.read'),
  hugeString,
);
/** Any value, wrong types first: what a field may receive from a hostile client. */
const hostileValue: fc.Arbitrary<unknown> = fc.oneof(
  { weight: 3, arbitrary: nastyString },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 1, arbitrary: fc.constantFrom(null, true, false, 0, -1, 1e308, -0, 2 ** 53 + 1, [], {}, [null], { '': '' }) },
  { weight: 1, arbitrary: fc.array(nastyString, { maxLength: 5 }) },
  { weight: 1, arbitrary: fc.dictionary(nastyString, fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 }) },
);

/** Objects with some of the route's own fields (and maybe others), carrying hostile values. */
const shapedJson = (fields: string[]): fc.Arbitrary<Sent> =>
  fc.tuple(
    fc.subarray([...fields, 'extra', '__proto__', 'constructor']),
    fc.array(hostileValue, { minLength: fields.length + 3, maxLength: fields.length + 3 }),
  ).map(([keys, values]) => ({
    // Built as text: JSON.stringify would drop a __proto__ key set through an object literal.
    body: `{${keys.map((k, i) => `${JSON.stringify(k)}:${JSON.stringify(values[i]) ?? 'null'}`).join(',')}}`,
    contentType: 'application/json',
  }));

const anyJson: fc.Arbitrary<Sent> = fc.jsonValue({ maxDepth: 6 }).map((v) => ({ body: JSON.stringify(v), contentType: 'application/json' }));

const pollutingJson = (fields: string[]): fc.Arbitrary<Sent> =>
  fc.tuple(fc.constantFrom('__proto__', 'constructor', 'prototype'), fc.constantFrom(...fields, 'x'), hostileValue).map(([evil, field, value]) => ({
    body: `{"${evil}":{"polluted":"yes","prototype":{"polluted":"yes"},"isAdmin":true},"${field}":${JSON.stringify(value) ?? 'null'},"constructor":{"prototype":{"polluted":"yes"}}}`,
    contentType: 'application/json',
  }));

/** Bytes that are not what the Content-Type says, or not complete, or not UTF-8. */
const malformed: fc.Arbitrary<Sent> = fc.tuple(
  fc.oneof(
    fc.constantFrom('{', '{"a":', '[', '{"a":1,}', "{'a':1}", 'null', '1', '"x"', 'true', '\ufeff{}', '{"a":1}{"b":2}', '{"a":NaN}', '{"a":1e99999}', `{"a":${'9'.repeat(400)}}`, ' ', ''),
    fc.integer({ min: 33, max: 3000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
    fc.integer({ min: 33, max: 500 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
    fc.uint8Array({ maxLength: 64 }).map((bytes) => Buffer.from(bytes).toString('latin1')),
    fc.string(),
  ),
  fc.constantFrom('application/json', 'application/json; charset=latin1', 'application/json; charset=utf-16', 'text/plain', 'application/x-www-form-urlencoded', 'multipart/form-data', 'application/xml', undefined),
  fc.boolean(),
).map(([text, contentType, invalidUtf8]) => ({
  body: invalidUtf8 ? Buffer.concat([Buffer.from(text, 'latin1'), Buffer.from([0xc3, 0x28, 0xff, 0xfe])]) : text,
  contentType,
}));

const formKey = (fields: string[]) => fc.oneof(
  fc.constantFrom(...fields),
  fc.constantFrom('__proto__[polluted]', 'constructor[prototype][polluted]', 'a[b][c][d]', `deep${'[x]'.repeat(40)}`, 'grant_type[]', '', '%', '&'),
  fc.string({ maxLength: 20 }),
);
const formBody = (fields: string[], grantTypes: string[] = []): fc.Arbitrary<Sent> =>
  fc.tuple(
    fc.array(fc.tuple(formKey(fields), nastyString), { maxLength: 8 }),
    fc.option(fc.constantFrom(...grantTypes, 'password', 'implicit', 'urn:x', ''), { nil: undefined }),
  ).map(([pairs, grant]) => {
    const params = new URLSearchParams();
    if (grant !== undefined) params.append('grant_type', grant);
    for (const [k, v] of pairs) params.append(k, v);
    return { body: params.toString(), contentType: 'application/x-www-form-urlencoded' };
  });
const malformedForm: fc.Arbitrary<Sent> = fc.constantFrom('%', '%zz', '&&&', '=', 'a=%E0%A4%A', 'a[=1', `a${'['.repeat(200)}=1`, 'a=1&a=2&a=3', `${'x='.repeat(5000)}`).map((body) => ({ body, contentType: 'application/x-www-form-urlencoded' }));

const pathParam = fc.oneof(
  fc.constantFrom('usr_doesnotexist0000', 'key_doesnotexist0000', 'sa_doesnotexist00000', 'demo-app-nope', '..', '%2e%2e%2f', '%00', 'a'.repeat(300), "'%20OR%201=1"),
  fc.string({ maxLength: 30 }).map(encodeURIComponent),
).filter((p) => p !== '' && p !== '.');

// ---- the properties ----------------------------------------------------------------------

describe('fuzzing every request body: never a 5xx, never a hang, always the error contract', () => {
  let server: TestServer;
  let adminToken: string;
  let operations: Operation[];
  /** Statuses seen per surface: a sanity check that the fuzz reaches past the first gate. */
  const seen = { v1: new Set<number>(), oauth: new Set<number>() };

  beforeAll(async () => {
    server = await startTestServer();
    adminToken = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    const document = (await (await fetch(`${server.url}/v1/openapi.json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: { content: Record<string, { schema: { properties?: Record<string, unknown> } }> }; responses: Record<string, { content?: Record<string, { schema: { properties?: Record<string, unknown> } }> }> }>>;
    };
    operations = Object.entries(document.paths).flatMap(([path, ops]) => Object.entries(ops)
      .filter(([, op]) => op.requestBody)
      .map(([method, op]) => {
        const [contentType, media] = Object.entries(op.requestBody!.content)[0];
        return {
          method: method.toUpperCase(),
          path,
          contentType: contentType as Operation['contentType'],
          fields: Object.keys(media.schema.properties ?? {}),
          oauthErrors: !!op.responses['400']?.content?.['application/json']?.schema.properties?.error_description,
        };
      }));
  });
  afterAll(() => server?.close());

  /** Sends one fuzzed request and checks the properties every answer must have. */
  async function send(method: string, path: string, sent: Sent, options: { oauthErrors: boolean; authorization?: string }): Promise<void> {
    const headers: Record<string, string> = {};
    if (sent.contentType) headers['content-type'] = sent.contentType;
    if (options.authorization) headers.authorization = options.authorization;
    const what = `${method} ${path} [${sent.contentType}] ${Buffer.from(sent.body).toString('latin1').slice(0, 200)}`;
    let res: Response;
    try {
      res = await fetch(`${server.url}${path}`, { method, headers, body: sent.body, redirect: 'manual', signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) });
    } catch (err) {
      throw new Error(`no answer within ${REQUEST_DEADLINE_MS} ms (or connection dropped): ${what}: ${(err as Error).message}`);
    }
    const text = await res.text();
    seen[path.startsWith('/oauth/') ? 'oauth' : 'v1'].add(res.status);
    expect(res.status, `5xx for ${what}: ${text.slice(0, 300)}`).toBeLessThan(500);
    if (res.status < 400) return;
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw new Error(`error answer is not JSON for ${what}: ${res.status} ${text.slice(0, 300)}`);
    }
    const requestId = res.headers.get('x-request-id');
    if (options.oauthErrors) {
      expect(typeof body.error, `RFC 6749 error for ${what}`).toBe('string');
      if (body.error_description !== undefined) expect(typeof body.error_description).toBe('string');
      // Every error repeats the request id, the provider's own included (DESIGN.md "HTTP edge").
      expect(body.request_id, `request_id for ${what}`).toBe(requestId);
      expect(body.code, what).toBeUndefined();
    } else {
      expect(body, `contract error shape for ${what}`).toMatchObject({ error: expect.any(String), code: expect.any(String), request_id: requestId });
      expect(Object.keys(errorCodes), what).toContain(body.code);
    }
    expect(text, what).not.toMatch(/node_modules|\.ts:\d+|at [A-Za-z.]+ \(/);
  }

  const concrete = (op: Operation, id: string) => op.path.replace(/\{[^}]+\}/g, id);

  it('finds the /v1 routes that take a body in the OpenAPI document', () => {
    const listed = operations.map((op) => `${op.method} ${op.path}`);
    expect(listed).toEqual(expect.arrayContaining(['POST /v1/auth/login', 'POST /v1/auth/refresh', 'POST /v1/auth/api-keys', 'POST /v1/auth/service-account/token', 'POST /v1/admin/users', 'PATCH /v1/admin/settings']));
    expect(operations.length).toBeGreaterThanOrEqual(15);
  });

  it('answers fuzzed JSON and form bodies on every /v1 route within the contract', async () => {
    for (const op of operations) {
      const form = op.contentType === 'application/x-www-form-urlencoded';
      const bodies = form
        ? fc.oneof(formBody(op.fields, ['urn:ietf:params:oauth:grant-type:jwt-bearer']), malformedForm, shapedJson(op.fields), malformed)
        : fc.oneof({ weight: 4, arbitrary: shapedJson(op.fields) }, { weight: 2, arbitrary: anyJson }, { weight: 1, arbitrary: pollutingJson(op.fields) }, { weight: 2, arbitrary: malformed }, { weight: 1, arbitrary: formBody(op.fields) });
      await fc.assert(
        fc.asyncProperty(bodies, pathParam, fc.boolean(), async (sent, id, withCredential) => {
          await send(op.method, concrete(op, id), sent, { oauthErrors: op.oauthErrors, authorization: withCredential ? `Bearer ${adminToken}` : undefined });
        }),
        runs(60),
      );
    }
  });

  it('answers fuzzed forms at /oauth/token, /oauth/introspect and /oauth/revoke in RFC 6749 form', async () => {
    const fields = ['grant_type', 'scope', 'code', 'redirect_uri', 'code_verifier', 'refresh_token', 'assertion', 'client_id', 'client_secret', 'resource', 'device_code', 'token', 'token_type_hint', 'audience'];
    const grants = ['client_credentials', 'authorization_code', 'refresh_token', 'urn:ietf:params:oauth:grant-type:jwt-bearer', 'urn:ietf:params:oauth:grant-type:device_code'];
    const authorization = fc.constantFrom<string | undefined>(undefined, 'demo', basicAuth(server?.demoClient.client_id ?? 'demo-app', 'wrong-secret-0123456789'), 'Basic %%%', 'Basic Og==', `Basic ${Buffer.from('a'.repeat(600)).toString('base64')}`, 'Bearer x');
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom('/oauth/token', '/oauth/token', '/oauth/token', '/oauth/introspect', '/oauth/revoke'),
        fc.oneof({ weight: 5, arbitrary: formBody(fields, grants) }, { weight: 1, arbitrary: malformedForm }, { weight: 1, arbitrary: anyJson }, { weight: 1, arbitrary: malformed }),
        authorization,
        async (path, sent, auth) => {
          await send('POST', path, sent, { oauthErrors: true, authorization: auth === 'demo' ? demoBasic(server) : auth });
        },
      ),
      {
        ...runs(300),
        // Well-formed requests first, so every run reaches past client authentication
        // whatever the random draws (a revocation answers 200 for any token).
        examples: [
          ['/oauth/token', { contentType: 'application/x-www-form-urlencoded', body: 'grant_type=client_credentials&scope=cmdb.read' }, 'demo'],
          ['/oauth/revoke', { contentType: 'application/x-www-form-urlencoded', body: 'token=not-a-real-token' }, 'demo'],
        ],
      },
    );
  });

  it('got past the first gates: bodies were parsed, validated and authenticated, not just refused by type', () => {
    for (const status of [400, 401, 415]) expect(seen.v1).toContain(status);
    for (const status of [200, 400, 401]) expect(seen.oauth).toContain(status);
  });

  it('left no pollution behind and still answers /healthz', async () => {
    // The server runs in this process: a polluted prototype would show here.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    const health = await fetch(`${server.url}/healthz`, { signal: AbortSignal.timeout(REQUEST_DEADLINE_MS) });
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: 'ok' });
  });
});
