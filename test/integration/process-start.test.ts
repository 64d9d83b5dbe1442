import { describe, expect, inject, it } from 'vitest';
import { spawn } from 'node:child_process';
import { createServer } from 'node:net';
import { resolve, join } from 'node:path';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';

const root = resolve(import.meta.dirname, '../..');

async function freePort(): Promise<number> {
  return new Promise((done) => {
    const srv = createServer().listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => done(port));
    });
  });
}

/** Runs `node src/main.ts` the way `npm start` does, with a clean environment. */
function startProcess(env: Record<string, string>) {
  const child = spawn(process.execPath, ['src/main.ts'], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d) => { stdout += String(d); });
  child.stderr.on('data', (d) => { stderr += String(d); });
  const exited = new Promise<number | null>((done) => child.on('exit', (code) => done(code)));
  return { child, exited, out: () => stdout, err: () => stderr };
}

async function waitFor(condition: () => boolean, ms = 20_000) {
  const until = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('the server process', () => {
  it('starts on the memory store with a printed admin password and demo client, and stops on SIGTERM', async () => {
    const port = await freePort();
    const proc = startProcess({ PORT: String(port), LOG_LEVEL: 'warn' });
    try {
      await waitFor(() => proc.out().includes('try the code flow'));
      const out = proc.out();
      expect(out).toContain(`listening on http://localhost:${port}`);
      expect(out).toMatch(/admin password \(shown once\): [A-Za-z0-9]{20}/);
      expect(out).toMatch(/demo client: demo-app {2}secret \(shown once\): [A-Za-z0-9]{48}/);
      expect(proc.err() + out).toContain('in-memory store');
      const discovery = await (await fetch(`http://localhost:${port}/.well-known/openid-configuration`)).json() as Record<string, unknown>;
      expect(discovery.issuer).toBe(`http://localhost:${port}`);
      expect(discovery.pushed_authorization_request_endpoint).toBe(`http://localhost:${port}/oauth/par`);
      expect(discovery.device_authorization_endpoint).toBe(`http://localhost:${port}/oauth/device/auth`);
      expect(discovery.dpop_signing_alg_values_supported).toEqual(expect.arrayContaining(['ES256']));
      expect(discovery.end_session_endpoint).toBe(`http://localhost:${port}/oauth/logout`);
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
  });

  it('registers the demo client on Redis only when DEMO_CLIENT asks for it, and removes it once it is off', async () => {
    const env = { REDIS_URL: inject('redisUrl'), REDIS_PREFIX: `demo${Date.now()}:`, SECRET_KEY: 'demo-client-test-secret-key-0123456789', ADMIN_PASSWORD: 'Admin-Pass-12345', LOG_LEVEL: 'warn' };
    const run = async (extra: Record<string, string>, whileUp: (port: number, out: string) => Promise<void>) => {
      const port = await freePort();
      const proc = startProcess({ ...env, ...extra, PORT: String(port) });
      try {
        await waitFor(() => proc.out().includes('discovery:'));
        await new Promise((r) => setTimeout(r, 100));
        await whileUp(port, proc.out());
      } finally {
        proc.child.kill('SIGTERM');
      }
      expect(await proc.exited).toBe(0);
    };
    const clientCredentials = (port: number, secret: string) => fetch(`http://localhost:${port}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`demo-app:${secret}`).toString('base64')}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'grant_type=client_credentials&scope=admin.users',
    });

    let secret = '';
    await run({ DEMO_CLIENT: 'true' }, async (port, out) => {
      secret = /demo client: demo-app {2}secret \(shown once\): ([A-Za-z0-9]{48})/.exec(out)![1];
      expect((await clientCredentials(port, secret)).status).toBe(200);
    });
    // REDIS_URL without DEMO_CLIENT: the production shape. The client and its printed secret are gone.
    await run({}, async (port, out) => {
      expect(out).toContain('demo client demo-app removed (DEMO_CLIENT is off)');
      expect(out).not.toContain('secret (shown once)');
      const refused = await clientCredentials(port, secret);
      expect(refused.status).toBe(401);
      expect((await refused.json() as { error: string }).error).toBe('invalid_client');
    });
    // The removed demo client's id is not given out again (its old tokens would come back with it).
    const adminToken = async (port: number) => ((await (await fetch(`http://localhost:${port}/v1/auth/login`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: 'admin@example.com', password: env.ADMIN_PASSWORD }),
    })).json()) as { token: string }).token;
    const createDemoAppClient = async (port: number) => fetch(`http://localhost:${port}/v1/admin/clients`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await adminToken(port)}`, 'content-type': 'application/json' },
      body: JSON.stringify({ client_id: 'demo-app', client_name: 'Our portal', grant_types: ['client_credentials'], token_endpoint_auth_method: 'client_secret_basic', scope: 'cmdb.read' }),
    });
    await run({ DEMO_CLIENT: 'false' }, async (port) => {
      expect((await createDemoAppClient(port)).status).toBe(409);
    });
    // On a store that never had the demo client, an admin's own client under that id (another name) is theirs: it stays.
    env.REDIS_PREFIX = `demo-own${Date.now()}:`;
    await run({ DEMO_CLIENT: 'false' }, async (port, out) => {
      expect(out).not.toContain('demo client');
      expect((await createDemoAppClient(port)).status).toBe(201);
    });
    await run({}, async (port, out) => {
      expect(out).not.toContain('demo client');
      const kept = await fetch(`http://localhost:${port}/v1/admin/clients/demo-app`, { headers: { authorization: `Bearer ${await adminToken(port)}` } });
      expect(kept.status).toBe(200);
    });
  });

  it('says at start when PUBLIC_URL is https but nothing in front is trusted to have terminated TLS', async () => {
    const port = await freePort();
    const proc = startProcess({ PORT: String(port), PUBLIC_URL: 'https://auth.example.test', LOG_LEVEL: 'warn', DEMO_CLIENT: 'false' });
    try {
      await waitFor(() => proc.out().includes('discovery:'));
      expect(proc.out()).toMatch(/"level":40.*PUBLIC_URL is https .*set TRUST_PROXY=true/);
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);
  });

  it('refuses to start on a bad setting with one line naming it', async () => {
    const proc = startProcess({ PORT: 'eighty' });
    expect(await proc.exited).toBe(2);
    expect(proc.err().trim()).toBe('nopesight-auth: invalid setting port (PORT): Invalid input: expected number, received NaN');
    expect(proc.out()).toBe('');
  });

  it('checks the clients of the config file at start, as the provider would on first use, and names the bad one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsa-config-'));
    try {
      const configFile = join(dir, 'config.json');
      const client = (extra: Record<string, unknown>) => ({ client_id: 'portal', client_secret: 'portal-secret-0123456789', ...extra });
      const cases: [Record<string, unknown>, RegExp][] = [
        // A code-flow client with nowhere to send the code.
        [client({ redirect_uris: [] }), /config client portal: redirect_uris: /],
        // private_key_jwt with no keys to check assertions against.
        [client({ client_secret: undefined, token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'], response_types: [] }), /config client portal: .*jwks/],
        // The admin API's redirect-URI rules: plain http only on loopback, per application_type.
        [client({ redirect_uris: ['http://portal.example.com/callback'] }), /config client portal: redirect_uris\.0: must use https \(http is allowed only for localhost and loopback addresses\)/],
        [client({ application_type: 'native', redirect_uris: ['http://portal.example.com/callback'] }), /config client portal: redirect_uris\.0: must use https/],
        [client({ redirect_uris: ['https://portal.example.com/callback'], post_logout_redirect_uris: ['http://portal.example.com/'] }), /config client portal: post_logout_redirect_uris\.0: must use https/],
        // A private-use scheme only for a native client; https on loopback not for one.
        [client({ redirect_uris: ['com.example.portal:/callback'] }), /config client portal: redirect_uris\.0: .*application_type "native"/],
        [client({ application_type: 'native', redirect_uris: ['https://127.0.0.1/callback'] }), /config client portal: redirect_uris\.0: must use http on a loopback address/],
      ];
      for (const [bad, message] of cases) {
        writeFileSync(configFile, JSON.stringify({ clients: [bad] }));
        const proc = startProcess({ PORT: String(await freePort()), CONFIG_FILE: configFile, LOG_LEVEL: 'silent' });
        expect(await proc.exited).toBe(1);
        expect(proc.err()).toMatch(message);
        expect(proc.err()).not.toContain('portal-secret-0123456789');
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('registers a native config-file client (application_type): loopback redirects on any port, private-use schemes; a bad type is a bad setting', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'nsa-config-'));
    const port = await freePort();
    const proc = (() => {
      const configFile = join(dir, 'config.json');
      writeFileSync(configFile, JSON.stringify({
        clients: [{ client_id: 'cli-tool', application_type: 'native', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/callback', 'com.example.cli:/callback'], scope: 'openid' }],
      }));
      return startProcess({ PORT: String(port), CONFIG_FILE: configFile, LOG_LEVEL: 'warn' });
    })();
    try {
      await waitFor(() => proc.out().includes('discovery:'));
      const authorize = (redirectUri: string) => fetch(`http://localhost:${port}/oauth/authorize?${new URLSearchParams({
        client_id: 'cli-tool', response_type: 'code', scope: 'openid', redirect_uri: redirectUri, code_challenge: 'a'.repeat(43), code_challenge_method: 'S256',
      })}`, { redirect: 'manual' });
      for (const uri of ['http://127.0.0.1:49152/callback', 'http://127.0.0.1:8123/callback', 'com.example.cli:/callback']) expect((await authorize(uri)).status, uri).toBe(303);
      expect((await authorize('http://127.0.0.1:8123/other')).status).toBe(400);
    } finally {
      proc.child.kill('SIGTERM');
    }
    expect(await proc.exited).toBe(0);

    try {
      const configFile = join(dir, 'bad.json');
      writeFileSync(configFile, JSON.stringify({ clients: [{ client_id: 'cli-tool', application_type: 'desktop', token_endpoint_auth_method: 'none', redirect_uris: ['http://127.0.0.1/callback'] }] }));
      const bad = startProcess({ PORT: String(await freePort()), CONFIG_FILE: configFile, LOG_LEVEL: 'silent' });
      expect(await bad.exited).toBe(2);
      expect(bad.err()).toMatch(/invalid setting clients\.0\.application_type: /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('says clearly when Redis cannot be reached at start', async () => {
    const port = await freePort();
    const deadRedis = await freePort();
    const proc = startProcess({ PORT: String(port), REDIS_URL: `redis://127.0.0.1:${deadRedis}`, LOG_LEVEL: 'silent' });
    expect(await proc.exited).toBe(1);
    expect(proc.err()).toMatch(/failed to start: .*store unavailable/);
  });
});
