import { randomAlphanumeric } from './domain/ids.ts';
import { generateClientSecret, type ClientMetadata } from './domain/clients.ts';
import type { ClientConfig } from './config/schema.ts';
import type { Deps } from './deps.ts';
import { apiScopesOf } from './domain/scopes.ts';
import { ensureServiceAccountsClient } from './oidc/jwt-bearer-grant.ts';
import { registerFirstPartyClient } from './oidc/first-party-tokens.ts';
import { createClientMetadataValidator, type ClientMetadataValidator } from './oidc/client-validator.ts';
import { AppError } from './errors/app-error.ts';
import { defaultResponseTypes, metadataProblems } from './domain/client-registration.ts';

export const DEMO_CLIENT_ID = 'demo-app';
const ADMIN_MARKER = 'bootstrap:admin';

export interface BootstrapReport {
  admin: { email: string; generatedPassword?: string; created: boolean };
  demoClient?: { client_id: string; client_secret?: string; redirect_uri: string; created: boolean };
  /** DEMO_CLIENT is off and the demo client an earlier start registered was removed. */
  demoClientRemoved?: boolean;
}

/**
 * Start-up data: the bootstrap admin (once per store), the clients declared in config,
 * and the demo client. Safe to run on every start and on several instances at once.
 */
export async function bootstrap(deps: Deps): Promise<BootstrapReport> {
  const { config, users, store } = deps;
  const report: BootstrapReport = { admin: { email: config.adminEmail, created: false } };

  // The marker is claimed with SET NX so only one instance ever creates the admin.
  const existingAdmin = await users.findByEmail(config.adminEmail);
  if (!existingAdmin && (await store.set(ADMIN_MARKER, config.adminEmail, { onlyIfAbsent: true }))) {
    const password = config.adminPassword ?? randomAlphanumeric(20);
    await users.create({ email: config.adminEmail, password, name: 'Administrator', scopes: Object.keys(deps.scopeCatalog).filter((s) => apiScopesOf(deps.scopeCatalog).includes(s)) });
    report.admin = { email: config.adminEmail, created: true, generatedPassword: config.adminPassword ? undefined : password };
  }

  // The provider checks a client only when it is first used: a bad one in the file stops
  // the start instead, naming the client and the field.
  const validate = createClientMetadataValidator(deps);
  for (const client of config.clients) await registerConfiguredClient(deps, client, validate);
  // The public client service accounts exchange their assertions through (RFC 7523).
  await ensureServiceAccountsClient(deps);
  await registerFirstPartyClient(deps);

  if (!config.demoClient) {
    if (await removeDemoClient(deps)) report.demoClientRemoved = true;
  } else {
    const redirectUri = `${config.publicUrl}/demo/callback`;
    const existing = await deps.clients.find(DEMO_CLIENT_ID);
    if (!existing) {
      const secret = generateClientSecret();
      await deps.clients.save(demoClientMetadata(redirectUri, deps), secret);
      report.demoClient = { client_id: DEMO_CLIENT_ID, client_secret: secret, redirect_uri: redirectUri, created: true };
    } else {
      report.demoClient = { client_id: DEMO_CLIENT_ID, redirect_uri: redirectUri, created: false };
    }
  }
  return report;
}

const DEMO_CLIENT_NAME = 'Demo App';

/**
 * With DEMO_CLIENT off, a demo client an earlier start registered is removed: it may ask
 * for every scope, and its secret was printed. A client an admin created under the same
 * id (another name) is theirs and stays.
 */
async function removeDemoClient(deps: Deps): Promise<boolean> {
  const existing = await deps.clients.find(DEMO_CLIENT_ID);
  if (!existing || existing.client_name !== DEMO_CLIENT_NAME) return false;
  await deps.clients.remove(DEMO_CLIENT_ID);
  await deps.audit.record({ type: 'admin.client.deleted', outcome: 'success', actor: 'bootstrap', subject: DEMO_CLIENT_ID, details: { reason: 'DEMO_CLIENT is off' } });
  return true;
}

function demoClientMetadata(redirectUri: string, deps: Deps): ClientMetadata {
  return {
    client_id: DEMO_CLIENT_ID,
    client_name: DEMO_CLIENT_NAME,
    redirect_uris: [redirectUri],
    post_logout_redirect_uris: [`${deps.config.publicUrl}/demo/callback`],
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: Object.keys(deps.scopeCatalog).join(' '),
  };
}

async function registerConfiguredClient(deps: Deps, client: ClientConfig, validate: ClientMetadataValidator): Promise<void> {
  const { client_secret: secret, ...fields } = client;
  if (fields.token_endpoint_auth_method !== 'none' && fields.token_endpoint_auth_method !== 'private_key_jwt' && !secret) {
    throw new Error(`config client ${client.client_id}: client_secret is required for ${fields.token_endpoint_auth_method}`);
  }
  const metadata: ClientMetadata = { ...fields, response_types: fields.response_types ?? defaultResponseTypes(fields.grant_types) };
  // The admin API's rules: redirect URIs for its application_type (stricter than the
  // provider's for web clients), no client_credentials without authentication, sound RSA keys.
  const problems = metadataProblems(metadata);
  if (problems.length) throw new Error(`config client ${client.client_id}: ${problems.map((d) => `${d.field}: ${d.message}`).join('; ')}`);
  try {
    await validate({ ...metadata, ...(secret ? { client_secret: secret } : {}) });
  } catch (err) {
    if (!(err instanceof AppError)) throw err;
    const details = (err.extra.details as { field: string; message: string }[] | undefined) ?? [];
    throw new Error(`config client ${client.client_id}: ${details.map((d) => `${d.field}: ${d.message}`).join('; ') || err.publicMessage}`);
  }
  await deps.clients.save(metadata, secret);
}

/** The lines printed once at start-up so a person knows where to go. */
export function describeBootstrap(report: BootstrapReport, publicUrl: string): string[] {
  const lines = [`nopesight-auth listening on ${publicUrl}`, `  discovery: ${publicUrl}/.well-known/openid-configuration`];
  if (report.admin.created) {
    lines.push(`  bootstrap admin: ${report.admin.email}`);
    if (report.admin.generatedPassword) lines.push(`  admin password (shown once): ${report.admin.generatedPassword}`);
  }
  if (report.demoClientRemoved) lines.push(`  demo client ${DEMO_CLIENT_ID} removed (DEMO_CLIENT is off)`);
  if (report.demoClient) {
    const d = report.demoClient;
    lines.push(`  demo client: ${d.client_id}${d.client_secret ? `  secret (shown once): ${d.client_secret}` : ''}`);
    lines.push(`  try the code flow: ${publicUrl}/oauth/authorize?client_id=${d.client_id}&response_type=code&scope=openid%20email%20cmdb.read&redirect_uri=${encodeURIComponent(d.redirect_uri)}&state=demo`);
  }
  return lines;
}
