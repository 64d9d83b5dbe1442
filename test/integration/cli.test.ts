import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { decodeProtectedHeader, importPKCS8, SignJWT } from 'jose';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { AUDIT_STREAM } from '../../src/domain/audit.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { userAccessToken } from '../support/user-token.ts';
import { ALL_ADMIN, api } from '../support/admin-client.ts';

const ROOT = resolve(import.meta.dirname, '../..');
const LAUNCHER = join(ROOT, 'bin', 'nopesight-auth.js');

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `nopesight-auth <args>` as a child process (through the bin launcher) against the test's store. */
function cli(env: Record<string, string | undefined>, args: string[], stdin?: string): Promise<Run> {
  return new Promise((done) => {
    const child = execFile(process.execPath, [LAUNCHER, ...args], { env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env }, cwd: ROOT, timeout: 60_000 }, (err, stdout, stderr) => {
      done({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.end(stdin ?? '');
  });
}

// Each case starts Node processes; on a busy 2-core machine that takes seconds.
describe('command-line administration (child processes on the run\'s Redis)', { timeout: 90_000 }, () => {
  const prefix = `cli${randomAlphanumeric(6)}:`;
  const secretKey = randomAlphanumeric(40);
  let server: TestServer;
  let env: Record<string, string>;
  let dir: string;
  /** What the CLI printed once and must never write anywhere else. */
  const secrets: string[] = [];

  beforeAll(async () => {
    server = await startTestServer({ prefix, secretKey });
    env = { REDIS_URL: inject('redisUrl'), REDIS_PREFIX: prefix, SECRET_KEY: secretKey, PUBLIC_URL: server.url, LOG_LEVEL: 'silent' };
    dir = await mkdtemp(join(tmpdir(), 'nsa-cli-'));
  });
  afterAll(async () => {
    await server?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('prints usage: help exits 0, no command or a bad one exits 2', async () => {
    const help = await cli(env, ['help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('create-service-account');
    const none = await cli(env, []);
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('Usage: nopesight-auth');
    for (const args of [['frobnicate'], ['create-user', '--email', 'a@example.test', '--scope', 'x'], ['create-user', '--bogus'], ['audit', '--limit', '0'], ['create-user']]) {
      const r = await cli(env, args);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr, args.join(' ')).toMatch(/^nopesight-auth: /);
    }
  });

  it('refuses to run without REDIS_URL (exit 2) and reports an unreachable store (exit 1)', async () => {
    const unset = await cli({ ...env, REDIS_URL: undefined }, ['rotate-keys']);
    expect(unset.code).toBe(2);
    expect(unset.stderr).toContain('REDIS_URL is not set');
    const down = await cli({ ...env, REDIS_URL: 'redis://127.0.0.1:1' }, ['rotate-keys']);
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('cannot reach the store');
  });

  it('create-admin: the generated password (shown once) signs in on the server and works on the admin API', async () => {
    const r = await cli(env, ['create-admin', '--email', 'ops@example.test', '--name', 'Ops', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const created = JSON.parse(r.stdout) as { id: string; email: string; scopes: string[]; password: string };
    expect(created.scopes).toEqual(expect.arrayContaining(['admin.users', 'admin.settings', 'admin.audit']));
    expect(created.password).toMatch(/^[A-Za-z0-9]{20}$/);
    secrets.push(created.password);
    const token = await userAccessToken(server, { email: 'ops@example.test', password: created.password }, ALL_ADMIN);
    const read = await api(server, 'GET', `/v1/admin/users/${created.id}`, { token });
    expect(read.status).toBe(200);
    expect(read.body.name).toBe('Ops');

    const again = await cli(env, ['create-admin', '--email', 'OPS@example.test']);
    expect(again.code).toBe(1);
    expect(again.stderr).toContain('already exists');
  });

  it('create-user with --password-stdin: the password is never printed, and the user signs in with it', async () => {
    const r = await cli(env, ['create-user', '--email', 'reader@example.test', '--scopes', 'cmdb.read,reports.read', '--password-stdin'], 'Reader-Pass-12345\n');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^created user usr_\w+ <reader@example.test> scopes: cmdb.read reports.read$/m);
    expect(r.stdout + r.stderr).not.toContain('Reader-Pass-12345');
    secrets.push('Reader-Pass-12345');
    expect(await server.deps.users.verifyPassword('reader@example.test', 'Reader-Pass-12345')).not.toBeNull();
    const token = await userAccessToken(server, { email: 'reader@example.test', password: 'Reader-Pass-12345' }, 'openid cmdb.read');
    expect((await api(server, 'GET', '/v1/auth/verify?scope=cmdb.read', { token })).status).toBe(200);
    const signedIn = await api(server, 'POST', '/v1/auth/login', { body: { email: 'reader@example.test', password: 'Reader-Pass-12345' } });
    expect(signedIn.status).toBe(200);
    expect(JSON.parse(Buffer.from(signedIn.body.token.split('.')[1], 'base64url').toString()).scopes).toEqual(['cmdb.read', 'reports.read']);

    const short = await cli(env, ['create-user', '--email', 'short@example.test', '--password-stdin'], 'short\n');
    expect(short.code).toBe(2);
    expect(short.stderr).toContain('password');
    expect(await server.deps.users.findByEmail('short@example.test')).toBeNull();

    // Names follow the API's rule: no control characters (they would reach terminals and logs), at most 100 characters.
    for (const name of ['evil\u001b[31mred\nline2', 'x'.repeat(101)]) {
      const refused = await cli(env, ['create-user', '--email', 'named@example.test', '--name', name]);
      expect(refused.code, name.slice(0, 20)).toBe(2);
      expect(refused.stderr).toContain('name');
    }
    expect(await server.deps.users.findByEmail('named@example.test')).toBeNull();
  });

  it('create-user --invite prints a one-time link the server accepts', async () => {
    const r = await cli(env, ['create-user', '--email', 'invited@example.test', '--invite', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const { inviteUrl } = JSON.parse(r.stdout) as { inviteUrl: string };
    expect(inviteUrl.startsWith(`${server.url}/invite?token=inv_`)).toBe(true);
    const token = new URL(inviteUrl).searchParams.get('token')!;
    secrets.push(token);
    expect((await api(server, 'POST', '/v1/auth/invite/accept', { body: { token, password: 'Invited-Pass-123' } })).status).toBe(200);
    expect(await server.deps.users.verifyPassword('invited@example.test', 'Invited-Pass-123')).not.toBeNull();
  });

  it('create-client: the secret (shown once) works at the server\'s token endpoint at once', async () => {
    const r = await cli(env, ['create-client', '--name', 'Nightly export', '--grant-type', 'client_credentials', '--scope', 'reports.read reports.export', '--client-id', 'nightly-export']);
    expect(r.code, r.stderr).toBe(0);
    const secret = /client_secret \(shown once\): (\S+)/.exec(r.stdout)![1];
    secrets.push(secret);
    const response = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`nightly-export:${secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'reports.export' }),
    });
    expect(response.status).toBe(200);
    const bad = await cli(env, ['create-client', '--name', 'x', '--redirect-uri', 'http://evil.example.com/cb']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('redirect_uris.0');
  });

  it('create-client --id-token-alg: the client is stored with it; a bad one is a usage error', async () => {
    const r = await cli(env, ['create-client', '--name', 'Portal', '--redirect-uri', 'https://portal.example.com/cb', '--scope', 'openid', '--client-id', 'portal', '--id-token-alg', 'ES256', '--json']);
    expect(r.code, r.stderr).toBe(0);
    secrets.push(JSON.parse(r.stdout).client_secret);
    expect(JSON.parse(r.stdout)).toMatchObject({ client_id: 'portal', id_token_signed_response_alg: 'ES256' });
    expect(JSON.parse((await server.store.get('client:portal'))!)).toMatchObject({ id_token_signed_response_alg: 'ES256' });
    const bad = await cli(env, ['create-client', '--name', 'x', '--redirect-uri', 'https://portal.example.com/cb', '--id-token-alg', 'HS256']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('id_token_signed_response_alg');
  });

  it('create-service-account writes a 0600 key file once; the key gets a token from the server', async () => {
    const path = join(dir, 'deployer.json');
    const r = await cli(env, ['create-service-account', '--name', 'deployer', '--scopes', 'cmdb.read,cmdb.write', '--key-file', path]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(path);
    expect(r.stdout).not.toContain('PRIVATE KEY');
    expect((await stat(path)).mode & 0o777).toBe(0o600);
    const keyFile = JSON.parse(await readFile(path, 'utf8')) as { type: string; account_id: string; key_id: string; private_key: string; token_uri: string };
    expect(keyFile).toMatchObject({ type: 'service_account', account_id: expect.stringMatching(/^sa_/), token_uri: `${server.url}/v1/auth/service-account/token` });
    secrets.push(keyFile.private_key.split('\n').slice(2, 3)[0]);

    const key = await importPKCS8(keyFile.private_key, 'RS256');
    const assertion = await new SignJWT({})
      .setProtectedHeader({ alg: 'RS256', kid: keyFile.key_id })
      .setIssuer(keyFile.account_id).setSubject(keyFile.account_id).setAudience(server.url)
      .setIssuedAt().setExpirationTime('5m').setJti(randomAlphanumeric(16))
      .sign(key);
    const response = await fetch(keyFile.token_uri, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'urn:ietf:params:oauth:grant-type:jwt-bearer', assertion }),
    });
    expect(response.status).toBe(200);
    const token = (await response.json()) as { access_token: string; scope: string };
    expect(token.scope.split(' ').sort()).toEqual(['cmdb.read', 'cmdb.write']);

    // Never overwrites: a second run on the same path changes nothing.
    const before = await readFile(path, 'utf8');
    const again = await cli(env, ['create-service-account', '--name', 'other', '--scopes', 'cmdb.read', '--key-file', path]);
    expect(again.code).toBe(1);
    expect(await readFile(path, 'utf8')).toBe(before);
    expect((await server.deps.serviceAccounts.list()).map((a) => a.name)).not.toContain('other');
  });

  it('rotate-keys: the server picks the new keys up; tokens signed before still verify', async () => {
    const before = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', authorization: `Basic ${Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64')}` },
      body: new URLSearchParams({ grant_type: 'client_credentials', scope: 'cmdb.read' }),
    }).then((r) => r.json() as Promise<{ access_token: string }>);
    const r = await cli(env, ['rotate-keys', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const result = JSON.parse(r.stdout) as { kids: string[]; retiring: { kid: string }[] };
    expect(result.kids).toHaveLength(3);
    expect(result.retiring.map((k) => k.kid)).toContain(decodeProtectedHeader(before.access_token).kid);
    // What the server's KEY_REFRESH_SECONDS timer does:
    await server.deps.keyRing.refresh();
    const jwks = (await (await fetch(`${server.url}/oauth/jwks`)).json()) as { keys: { kid: string }[] };
    expect(jwks.keys.map((k) => k.kid)).toEqual(expect.arrayContaining([...result.kids, ...result.retiring.map((k) => k.kid)]));
    expect((await api(server, 'GET', '/v1/auth/verify', { token: before.access_token })).status).toBe(200);
  });

  it('audit lists what the CLI did (actor cli), with filters; JSON lines with --json', async () => {
    const r = await cli(env, ['audit', '--actor', 'cli', '--limit', '50', '--json']);
    expect(r.code, r.stderr).toBe(0);
    const events = r.stdout.trim().split('\n').map((line) => JSON.parse(line) as { type: string; actor: string });
    expect(events.every((e) => e.actor === 'cli')).toBe(true);
    expect(new Set(events.map((e) => e.type))).toEqual(new Set([
      'admin.user.created', 'admin.user.invited', 'admin.client.created', 'admin.serviceaccount.created', 'admin.signing_keys.rotated',
    ]));
    const text = await cli(env, ['audit', '--type', 'admin.client.*']);
    expect(text.stdout.trim().split('\n')).toHaveLength(2);
    expect(text.stdout).toMatch(/admin\.client\.created {2}success {2}actor=cli {2}subject=nightly-export/);
    expect(text.stdout).toMatch(/admin\.client\.created {2}success {2}actor=cli {2}subject=portal/);
  });

  it('wrote no secret into the audit trail', async () => {
    const haystack = JSON.stringify(await server.store.streamRange(AUDIT_STREAM, '-', '+', 100_000));
    expect(secrets.length).toBeGreaterThanOrEqual(5);
    for (const secret of secrets) expect(haystack.includes(secret)).toBe(false);
  });

  it('npm run cli -- help runs the same program', async () => {
    const r = await new Promise<Run>((done) => {
      execFile('npm', ['run', '--silent', 'cli', '--', 'help'], { cwd: ROOT, env: { ...process.env, ...env } }, (err, stdout, stderr) => done({ code: err ? 1 : 0, stdout, stderr }));
    });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('Usage: nopesight-auth <command>');
  });
});
