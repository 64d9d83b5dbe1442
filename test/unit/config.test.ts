import { describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loadConfig, ConfigError } from '../../src/config/load.ts';
import { configWarnings } from '../../src/config/warnings.ts';

const emptyDir = () => mkdtempSync(join(tmpdir(), 'nsa-config-'));

describe('configuration', () => {
  it('has the documented defaults', () => {
    const config = loadConfig({}, emptyDir());
    expect(config.port).toBe(3000);
    expect(config.publicUrl).toBe('http://localhost:3000');
    expect(config.redisUrl).toBeUndefined();
    expect(config.accessTokenTtl).toBe(900);
    expect(config.refreshTokenTtl).toBe(7 * 24 * 3600);
    expect(config.apiKeyEnv).toBe('live');
    expect(config.trustProxy).toBe(false);
  });

  it('layers file, then CONFIG_FILE, then environment', () => {
    const dir = emptyDir();
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ port: 4000, logLevel: 'warn' }));
    const extra = join(dir, 'site.json');
    writeFileSync(extra, JSON.stringify({ logLevel: 'error', corsOrigins: ['https://app.example'] }));
    const config = loadConfig({ CONFIG_FILE: extra, PORT: '4100', CORS_ORIGINS: 'https://a.example, https://b.example', TRUST_PROXY: 'true' }, dir);
    expect(config.port).toBe(4100);
    expect(config.logLevel).toBe('error');
    expect(config.corsOrigins).toEqual(['https://a.example', 'https://b.example']);
    expect(config.trustProxy).toBe(true);
    expect(config.publicUrl).toBe('http://localhost:4100');
  });

  it.each([
    [{ PORT: 'abc' }, /port \(PORT\)/],
    [{ PORT: '70000' }, /port \(PORT\)/],
    [{ REDIS_URL: 'http://x' }, /redisUrl \(REDIS_URL\).*redis:\/\//],
    [{ PUBLIC_URL: 'not a url' }, /publicUrl \(PUBLIC_URL\)/],
    [{ ACCESS_TOKEN_TTL: '-5' }, /accessTokenTtl \(ACCESS_TOKEN_TTL\)/],
    [{ ADMIN_PASSWORD: 'short' }, /adminPassword \(ADMIN_PASSWORD\).*12/],
    [{ ACCESS_TOKEN_ALG: 'HS256' }, /accessTokenAlg \(ACCESS_TOKEN_ALG\)/],
    [{ LOG_LEVEL: 'loud' }, /logLevel \(LOG_LEVEL\)/],
  ])('refuses %o with one line naming the setting', (env, pattern) => {
    let error: unknown;
    try {
      loadConfig(env as NodeJS.ProcessEnv, emptyDir());
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toMatch(pattern);
    expect((error as Error).message).not.toContain('\n');
  });

  it('refuses unknown keys and broken files in the config file', () => {
    const dir = emptyDir();
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ prot: 1 }));
    expect(() => loadConfig({}, dir)).toThrow(/prot|Unrecognized/);
    writeFileSync(join(dir, 'default.json'), '{ nope');
    expect(() => loadConfig({}, dir)).toThrow(/default\.json/);
    expect(() => loadConfig({ CONFIG_FILE: join(dir, 'missing.json') }, emptyDir())).toThrow(/CONFIG_FILE/);
  });

  it('warns when PUBLIC_URL is https but the server sees plain HTTP without a trusted proxy', () => {
    const warned = (env: Record<string, string>) => configWarnings(loadConfig(env, emptyDir()));
    expect(warned({ PUBLIC_URL: 'https://auth.example.com' })).toEqual([expect.stringMatching(/TRUST_PROXY=true.*Secure/)]);
    expect(warned({ PUBLIC_URL: 'https://auth.example.com', TRUST_PROXY: 'true' })).toEqual([]);
    expect(warned({ PUBLIC_URL: 'https://auth.example.com', TLS_CERT_FILE: '/c.pem', TLS_KEY_FILE: '/k.pem' })).toEqual([]);
    expect(warned({})).toEqual([]);
  });

  it('registers the demo client by default only on the in-memory store', () => {
    expect(loadConfig({}, emptyDir()).demoClient).toBe(true);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }, emptyDir()).demoClient).toBe(false);
    expect(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379', DEMO_CLIENT: 'true' }, emptyDir()).demoClient).toBe(true);
    expect(loadConfig({ DEMO_CLIENT: 'false' }, emptyDir()).demoClient).toBe(false);
  });

  it('refuses a config-file client with a field it does not know, naming the field', () => {
    const dir = emptyDir();
    const client = { client_id: 'portal', client_secret: 'portal-secret-0123456789', redirect_uris: ['https://portal.example/cb'] };
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ clients: [client] }));
    expect(loadConfig({}, dir).clients[0].client_id).toBe('portal');
    // A misspelt `scope` would otherwise leave the client with the default scopes.
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ clients: [{ ...client, scopes: 'openid reports.read' }] }));
    expect(() => loadConfig({}, dir)).toThrow(/^invalid setting clients\.0: Unrecognized key: "scopes"$/);
    writeFileSync(join(dir, 'default.json'), JSON.stringify({ clients: [{ ...client, redirect_uri: 'https://portal.example/cb' }] }));
    expect(() => loadConfig({}, dir)).toThrow(/clients\.0: .*"redirect_uri"/);
  });

  it('refuses a config-file client whose id would make its tokens speak for a user, service account or key', () => {
    const dir = emptyDir();
    for (const id of ['usr_admin', 'SA_reports', 'key_x']) {
      writeFileSync(join(dir, 'default.json'), JSON.stringify({ clients: [{ client_id: id, client_secret: 'portal-secret-0123456789', grant_types: ['client_credentials'] }] }));
      expect(() => loadConfig({}, dir), id).toThrow(/^invalid setting clients\.0\.client_id: must not start with usr_, sa_, key_$/);
    }
  });

  it('takes a config-file client\'s application_type: web by default, native, nothing else', () => {
    const dir = emptyDir();
    const write = (client: Record<string, unknown>) => writeFileSync(join(dir, 'default.json'), JSON.stringify({ clients: [{ client_id: 'cli', token_endpoint_auth_method: 'none', ...client }] }));
    write({ redirect_uris: ['http://127.0.0.1/callback'] });
    expect(loadConfig({}, dir).clients[0].application_type).toBe('web');
    // Redirect URIs are judged at start by the client's type (src/bootstrap.ts), not here:
    // a native client's private-use scheme passes the schema.
    write({ application_type: 'native', redirect_uris: ['http://127.0.0.1/callback', 'com.example.cli:/callback'] });
    expect(loadConfig({}, dir).clients[0]).toMatchObject({ application_type: 'native', redirect_uris: ['http://127.0.0.1/callback', 'com.example.cli:/callback'] });
    for (const bad of ['desktop', 'Native', null]) {
      write({ application_type: bad });
      expect(() => loadConfig({}, dir), String(bad)).toThrow(/^invalid setting clients\.0\.application_type: /);
    }
  });
});
