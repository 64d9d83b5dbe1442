import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { execFile } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { clientAccessToken } from '../support/user-token.ts';
import { createServiceAccount } from '../support/service-account.ts';

const run = promisify(execFile);
const fixtures = resolve(import.meta.dirname, '../fixtures');
// The guide's class posts to this URL with this audience; only the URL is changed here,
// and the server is told to accept the guide's audience (SERVICE_ACCOUNT_AUDIENCES).
const GUIDE_TOKEN_URL = 'https://api.nopesight.com/v1/auth/service-account/token';
const GUIDE_AUDIENCE = 'https://api.nopesight.com';

// The guide's "Service Account Authentication" Python class, run as written with
// Debian's python3 (python3-jwt, python3-requests, python3-cryptography).
describe("the guide's Python ServiceAccountAuth class", () => {
  let server: TestServer;
  let dir: string;

  beforeAll(async () => {
    server = await startTestServer({ config: { serviceAccountAudiences: [GUIDE_AUDIENCE] } });
    dir = mkdtempSync(join(tmpdir(), 'guide-sa-'));
    const guide = readFileSync(join(fixtures, 'service_account_auth.py'), 'utf8');
    expect(guide.split(GUIDE_TOKEN_URL)).toHaveLength(2);
    expect(guide).toContain(`'aud': '${GUIDE_AUDIENCE}'`);
    writeFileSync(join(dir, 'service_account_auth.py'), guide.replace(GUIDE_TOKEN_URL, `${server.url}/v1/auth/service-account/token`));
    copyFileSync(join(fixtures, 'service_account_driver.py'), join(dir, 'service_account_driver.py'));
  });
  afterAll(async () => {
    await server?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gets a token with a server-made key file, reuses it on the second call, and uses it on /v1', async () => {
    const admin = await clientAccessToken(server, 'admin.settings cmdb.read reports.read');
    const account = await createServiceAccount(server, admin, { name: 'nightly-discovery', scopes: ['cmdb.read', 'reports.read'] });
    const keyFile = account.keyFile!;
    expect(keyFile).toMatchObject({ type: 'service_account', account_id: account.id, key_id: account.keys[0].kid, token_uri: `${server.url}/v1/auth/service-account/token` });
    expect(keyFile.private_key).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const keyPath = join(dir, 'key.json');
    writeFileSync(keyPath, JSON.stringify(keyFile), { mode: 0o600 });

    // A clean environment: Debian's python3, no proxies, no pyenv.
    const { stdout } = await run('/usr/bin/python3', ['service_account_driver.py', keyPath, `${server.url}/v1/auth/verify?scope=cmdb.read`], {
      cwd: dir,
      env: { PATH: '/usr/bin:/bin', LANG: 'C.UTF-8' },
      timeout: 20_000,
    });
    const result = JSON.parse(stdout.trim());
    expect(result).toEqual({
      same_token: true,
      token_requests: 1,
      api_status: 200,
      api_body: { subject: account.id, type: 'service_account', scopes: ['cmdb.read', 'reports.read'] },
    });

    // The server saw exactly one exchange for the two get_token() calls.
    const events = await server.store.streamRange('audit', '-', '+', 100);
    const exchanges = events.filter((e) => e.fields.type === 'serviceaccount.token' && e.fields.actor === account.id);
    expect(exchanges.map((e) => e.fields.outcome)).toEqual(['success']);
  });
});
