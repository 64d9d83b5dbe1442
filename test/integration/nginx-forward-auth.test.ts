import { spawn, type ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, userAccessToken, type TestUser } from '../support/user-token.ts';

// Debian's nginx, installed by scripts/setup-system.sh. The only reason to leave this
// file out is a machine without it.
const NGINX = '/usr/sbin/nginx';
const GATEWAY_CONF = resolve(import.meta.dirname, '../../docs/nginx/api-gateway.conf');

async function freePort(): Promise<number> {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.once('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as { port: number };
      srv.close(() => ok(port));
    });
  });
}

interface Nginx { url: string; dir: string; process: ChildProcess; stop(): Promise<void> }

/**
 * Runs docs/nginx/api-gateway.conf as documented, with only addresses changed: the
 * listen port, the nopesight-auth address, the stand-in API's socket and the log path.
 */
async function startNginx(authAddress: string): Promise<Nginx> {
  const dir = await mkdtemp(join(tmpdir(), 'nsa-nginx-'));
  // Started as root, nginx's workers run as an unprivileged user: they must reach the
  // stand-in API's socket in here.
  await chmod(dir, 0o755);
  const port = await freePort();
  const documented = await readFile(GATEWAY_CONF, 'utf8');
  const replacements: [string, string][] = [
    ['server 127.0.0.1:3000;', `server ${authAddress};`],
    ['listen 8080;', `listen 127.0.0.1:${port};`],
    ['/tmp/nopesight-cmdb.sock', join(dir, 'cmdb.sock')],
    ['/var/log/nginx/api-gateway.access.log', join(dir, 'access.log')],
  ];
  let gateway = documented;
  for (const [from, to] of replacements) {
    expect(gateway, `the documented config has ${from}`).toContain(from);
    gateway = gateway.split(from).join(to);
  }
  await writeFile(join(dir, 'api-gateway.conf'), gateway);
  await writeFile(join(dir, 'nginx.conf'), `daemon off;
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 128; }
http {
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/api-gateway.conf;
}
`);
  const child = spawn(NGINX, ['-c', join(dir, 'nginx.conf'), '-p', `${dir}/`, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout!.on('data', (d) => { output += d; });
  child.stderr!.on('data', (d) => { output += d; });
  const exited = new Promise<void>((ok) => child.once('exit', () => ok()));
  const url = `http://127.0.0.1:${port}`;
  for (let attempt = 0; ; attempt++) {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${output}${await readFile(join(dir, 'error.log'), 'utf8').catch(() => '')}`);
    try {
      await fetch(`${url}/`);
      break;
    } catch {
      if (attempt > 100) throw new Error(`nginx did not listen: ${output}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return {
    url,
    dir,
    process: child,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
}

describe('nginx auth_request in front of /v1/cmdb/servers (docs/nginx/api-gateway.conf)', () => {
  let server: TestServer;
  let nginx: Nginx;
  let user: TestUser;
  let apiKey: string;

  const newKey = async (name: string, scopes: string[], allowedIps: string[] = []) =>
    (await server.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name, scopes, lifetimeMs: 3600_000, allowedIps })).key;

  beforeAll(async () => {
    // TRUST_PROXY: nginx is the only way in and tells the client address in X-Forwarded-For.
    server = await startTestServer({ config: { trustProxy: true } });
    user = await createTestUser(server, ['cmdb.read', 'reports.read'], 'ops');
    apiKey = await newKey('Integration Key', ['cmdb.read']);
    nginx = await startNginx(new URL(server.url).host);
  });
  afterAll(async () => {
    await nginx?.stop();
    await server?.close();
  });

  async function json(res: Response) {
    const text = await res.text();
    return { status: res.status, headers: res.headers, body: JSON.parse(text) as Record<string, string>, text };
  }

  it("passes the guide's API-key calls, header and query string, with the caller's identity", async () => {
    // curl -X GET https://api.nopesight.com/v1/cmdb/servers -H "X-API-Key: your-api-key-here"
    const byHeader = await json(await fetch(`${nginx.url}/v1/cmdb/servers`, { method: 'GET', headers: { 'X-API-Key': apiKey } }));
    expect(byHeader.status).toBe(200);
    expect(byHeader.body).toEqual({ servers: [{ id: 'srv-001', name: 'web-01' }], subject: user.id, type: 'api_key', scopes: 'cmdb.read' });

    // curl -X GET https://api.nopesight.com/v1/cmdb/servers?api_key=your-api-key-here
    const byQuery = await json(await fetch(`${nginx.url}/v1/cmdb/servers?api_key=${apiKey}`, { method: 'GET' }));
    expect(byQuery.status).toBe(200);
    expect(byQuery.body.subject).toBe(user.id);

    // Any method: the check is a GET subrequest without the body.
    const post = await fetch(`${nginx.url}/v1/cmdb/servers`, { method: 'POST', headers: { 'X-API-Key': apiKey, 'content-type': 'application/json' }, body: '{"name":"web-02"}' });
    expect(post.status).toBe(200);

    const logged = await readFile(join(nginx.dir, 'access.log'), 'utf8');
    expect(logged).toContain('/v1/cmdb/servers');
    expect(logged).not.toContain(apiKey);
  });

  it("passes the guide's bearer-token call", async () => {
    const token = await userAccessToken(server, user, 'openid cmdb.read');
    const res = await json(await fetch(`${nginx.url}/v1/cmdb/servers`, { headers: { Authorization: 'Bearer ' + token } }));
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({ subject: user.id, type: 'user' });
  });

  it('answers 401 for bad, tampered, revoked or missing credentials, and 403 without the scope', async () => {
    const revoked = await server.deps.apiKeys.create({ ownerId: user.id, grantableScopes: user.scopes, name: 'Revoked', scopes: ['cmdb.read'], lifetimeMs: 3600_000, allowedIps: [] });
    await server.deps.apiKeys.revoke(user.id, revoked.view.id);
    const tampered = apiKey.slice(0, -1) + (apiKey.endsWith('a') ? 'b' : 'a');
    for (const headers of [
      { 'X-API-Key': 'your-api-key-here' },
      { 'X-API-Key': tampered },
      { 'X-API-Key': revoked.key },
      { Authorization: 'Bearer not-a-token' },
      {},
    ] as Record<string, string>[]) {
      const res = await json(await fetch(`${nginx.url}/v1/cmdb/servers`, { headers }));
      expect(res.status, JSON.stringify(headers)).toBe(401);
      expect(res.body).toMatchObject({ error: 'Invalid token', code: 'INVALID_TOKEN' });
      expect(res.text).not.toContain('srv-001');
    }
    const badQuery = await fetch(`${nginx.url}/v1/cmdb/servers?api_key=${tampered}`);
    expect(badQuery.status).toBe(401);

    const reportsOnly = await newKey('Reports only', ['reports.read']);
    const forbidden = await json(await fetch(`${nginx.url}/v1/cmdb/servers`, { headers: { 'X-API-Key': reportsOnly } }));
    expect(forbidden.status).toBe(403);
    expect(forbidden.body).toEqual({ error: 'Insufficient permissions', code: 'INSUFFICIENT_SCOPE', required_scope: 'cmdb.read', request_id: forbidden.body.request_id });
    expect(forbidden.text).not.toContain('srv-001');
  });

  it("checks IP allow-lists against the client's address, which a client cannot forge through nginx", async () => {
    const local = await newKey('Local only', ['cmdb.read'], ['127.0.0.1']);
    const remote = await newKey('Remote only', ['cmdb.read'], ['192.0.2.10']);
    expect((await fetch(`${nginx.url}/v1/cmdb/servers`, { headers: { 'X-API-Key': local } })).status).toBe(200);
    expect((await fetch(`${nginx.url}/v1/cmdb/servers`, { headers: { 'X-API-Key': remote } })).status).toBe(401);
    expect((await fetch(`${nginx.url}/v1/cmdb/servers`, { headers: { 'X-API-Key': remote, 'X-Forwarded-For': '192.0.2.10' } })).status).toBe(401);
  });
});
