import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** RFC 6749 §2.3.1: HTTP Basic with the form-encoded id and secret. */
export const basicAuth = (id: string, secret: string): string =>
  `Basic ${Buffer.from(`${encodeURIComponent(id)}:${encodeURIComponent(secret)}`).toString('base64')}`;

const secret = () => randomBytes(24).toString('base64url').replace(/[^A-Za-z0-9]/g, 'x');

export interface BenchUser {
  email: string;
  password: string;
}

export interface BenchClient {
  clientId: string;
  secret: string;
  authorization: string;
  scope: string;
}

/**
 * The bench's known credentials: the same client ids, secrets, scopes and redirect URI
 * on our server (through a CONFIG_FILE) and on the bare provider (static clients).
 */
export interface Fixtures {
  dir: string;
  /** CONFIG_FILE of our server: the two clients below. */
  configFile: string;
  secretKey: string;
  admin: { email: string; password: string };
  /** Confidential client with client_credentials only. */
  cc: BenchClient;
  /** Confidential client with authorization_code + refresh_token. */
  web: BenchClient & { redirectUri: string };
  /** Account id the bare provider's development login form accepts. */
  bareAccount: string;
  /**
   * Ordinary users (scope cmdb.read), one per connection, created through the admin API on
   * first use: lockout counts attempts per account before checking the password, so many
   * parallel logins of one account would (rightly) lock it.
   */
  users: BenchUser[];
  remove(): void;
}

export function createFixtures(): Fixtures {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'nopesight-bench-'));
  const ccSecret = secret();
  const webSecret = secret();
  const redirectUri = 'https://client.example/callback';
  const cc: BenchClient = { clientId: 'bench-cc', secret: ccSecret, authorization: basicAuth('bench-cc', ccSecret), scope: 'cmdb.read reports.read' };
  const web = { clientId: 'bench-web', secret: webSecret, authorization: basicAuth('bench-web', webSecret), scope: 'openid offline_access cmdb.read', redirectUri };
  const configFile = path.join(dir, 'bench-config.json');
  writeFileSync(configFile, JSON.stringify({
    clients: [
      {
        client_id: cc.clientId,
        client_secret: cc.secret,
        client_name: 'Bench service',
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: cc.scope,
      },
      {
        client_id: web.clientId,
        client_secret: web.secret,
        client_name: 'Bench web app',
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [redirectUri],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: web.scope,
      },
    ],
  }, null, 2));
  return {
    dir,
    configFile,
    secretKey: randomBytes(32).toString('base64url'),
    admin: { email: 'bench-admin@example.com', password: `Bench-${secret()}` },
    cc,
    web,
    bareAccount: 'bench-user',
    users: [],
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
