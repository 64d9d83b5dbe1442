import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import { errors, type Client, type KoaContextWithOIDC } from 'oidc-provider';
import type { Config } from '../config/schema.ts';
import type { Deps } from '../deps.ts';
import type { RequestFacts } from '../domain/audit.ts';
import type { ClientMetadata } from '../domain/clients.ts';
import { apiScopesOf, parseScope } from '../domain/scopes.ts';
import { requestFacts } from '../http/request-facts.ts';
import { createAssertionVerifier, type AssertionPolicy, type GrantErrorCode } from '../domain/service-account-assertions.ts';
import { createServiceAccountTokenMinter, JWT_BEARER_GRANT, SERVICE_ACCOUNT_TOKEN_PATH, type TokenResponse } from './service-account-tokens.ts';

/** The public client a service account's assertion is exchanged through when the request names no client. */
export const SERVICE_ACCOUNTS_CLIENT_ID = 'service-accounts';
/** oidc-provider's answer to a token request that names no client (shared/client_auth.js). */
const NO_CLIENT_AUTHENTICATION = 'no client authentication mechanism provided';
/** The provider's token endpoint (DESIGN.md fixes the path; provider.ts routes it). */
const OAUTH_TOKEN_PATH = '/oauth/token';

/**
 * Audiences an assertion may name (RFC 7523 §3 item 3): the token endpoint first (the
 * one error messages suggest), the /v1 alias, the issuer, then SERVICE_ACCOUNT_AUDIENCES.
 */
export const serviceAccountAudiences = (config: Config): string[] => [...new Set([
  `${config.publicUrl}${OAUTH_TOKEN_PATH}`,
  `${config.publicUrl}${SERVICE_ACCOUNT_TOKEN_PATH}`,
  config.publicUrl,
  ...config.serviceAccountAudiences,
])];

export const assertionPolicyOf = (config: Config): AssertionPolicy => ({
  audiences: serviceAccountAudiences(config),
  clockSkewSeconds: config.serviceAccountClockSkewSeconds,
  requireJti: config.serviceAccountRequireJti,
});

export function serviceAccountsClientMetadata(deps: Pick<Deps, 'scopeCatalog'>): ClientMetadata {
  return {
    client_id: SERVICE_ACCOUNTS_CLIENT_ID,
    client_name: 'Service accounts',
    grant_types: [JWT_BEARER_GRANT],
    response_types: [],
    redirect_uris: [],
    // The assertion authenticates the service account; the client adds nothing to prove.
    token_endpoint_auth_method: 'none',
    scope: apiScopesOf(deps.scopeCatalog).join(' '),
  };
}

/** Registers (or refreshes) the service-accounts client; run at start-up. */
export async function ensureServiceAccountsClient(deps: Pick<Deps, 'clients' | 'scopeCatalog'>): Promise<void> {
  await deps.clients.save(serviceAccountsClientMetadata(deps));
}

export type ExchangeOutcome = { ok: true; body: TokenResponse } | { ok: false; error: GrantErrorCode; description: string };

/**
 * The one JWT-bearer handler behind /oauth/token and /v1/auth/service-account/token:
 * verify the assertion, issue the token, write the audit trail.
 */
export function createJwtBearerExchange(deps: Deps) {
  const { serviceAccounts, audit } = deps;
  const verifier = createAssertionVerifier({ accounts: serviceAccounts, store: deps.store, clock: deps.clock, policy: assertionPolicyOf(deps.config) });
  const minter = createServiceAccountTokenMinter({
    config: deps.config,
    clock: deps.clock,
    scopeCatalog: deps.scopeCatalog,
    accounts: serviceAccounts,
    tokenTtl: () => deps.settings.current().tokens.serviceAccountTokenTtl,
  });

  async function exchange(provider: Provider, client: Client, input: { assertion: unknown; scope: unknown; facts: RequestFacts; endpoint: string; dpop?: string }): Promise<ExchangeOutcome> {
    // Its tokens are never bound to a DPoP key: one asked for with a proof is refused rather
    // than handed out as a plain bearer token the client would take for a bound one.
    if (input.dpop) return { ok: false, error: 'invalid_request', description: 'this grant does not issue DPoP-bound tokens; send the request without a DPoP header' };
    const allowedScopes = typeof client.scope === 'string' ? parseScope(client.scope) : undefined;
    const result = await verifier.verify({ assertion: input.assertion, scope: input.scope, allowedScopes });
    const base = { type: 'serviceaccount.token', ...input.facts };
    if (!result.ok) {
      await audit.record({
        ...base,
        outcome: 'failure',
        actor: result.account?.id ?? 'anonymous',
        subject: result.account ? undefined : result.claimedAccountId,
        details: { reason: result.reason, clientId: client.clientId, endpoint: input.endpoint },
      });
      return { ok: false, error: result.error, description: result.description };
    }
    const { account, key, scopes } = result;
    const minted = await minter.mint(provider, client, account, key, scopes);
    if (!minted.ok && minted.reason === 'key_retired') {
      await audit.record({ ...base, outcome: 'failure', actor: account.id, details: { reason: 'signature', clientId: client.clientId, endpoint: input.endpoint } });
      return { ok: false, error: 'invalid_grant', description: 'the assertion is not signed by an active key of the service account named in iss' };
    }
    if (!minted.ok) {
      // A disable or delete raced this request; its sweep may have missed the new grant.
      await serviceAccounts.revokeTokens(account.id);
      await audit.record({ ...base, outcome: 'failure', actor: account.id, details: { reason: 'disabled', clientId: client.clientId, endpoint: input.endpoint } });
      return { ok: false, error: 'invalid_grant', description: 'the service account is disabled' };
    }
    await audit.record({
      ...base,
      outcome: 'success',
      actor: account.id,
      details: { kid: key.kid, scopes: parseScope(minted.body.scope), clientId: client.clientId, endpoint: input.endpoint },
    });
    return { ok: true, body: minted.body };
  }

  /** The service-accounts client, re-registered if it has gone missing. */
  async function defaultClient(provider: Provider): Promise<Client> {
    let client = await provider.Client.find(SERVICE_ACCOUNTS_CLIENT_ID);
    if (!client) {
      await ensureServiceAccountsClient(deps);
      client = await provider.Client.find(SERVICE_ACCOUNTS_CLIENT_ID);
    }
    if (!client) throw new Error('the service-accounts client cannot be loaded');
    return client;
  }

  return { exchange, defaultClient };
}

export type JwtBearerExchange = ReturnType<typeof createJwtBearerExchange>;

/**
 * Adds the grant to the provider. A client that authenticates (and lists the grant in
 * its grant_types) uses it like any other grant. RFC 7523 §3.1 makes client
 * authentication optional, and a service account has nothing but its key: a request
 * naming no client at all, which the provider refuses before any grant runs, is
 * answered here through the service-accounts client.
 */
export function registerJwtBearerGrant(provider: Provider, deps: Deps): void {
  const bearer = createJwtBearerExchange(deps);
  provider.registerGrantType(JWT_BEARER_GRANT, async (ctx) => {
    const { client, params } = ctx.oidc;
    const outcome = await bearer.exchange(ctx.oidc.provider, client, {
      assertion: params.assertion,
      scope: params.scope,
      facts: requestFacts(ctx),
      endpoint: OAUTH_TOKEN_PATH,
      dpop: ctx.get('dpop'),
    });
    if (!outcome.ok) throw new errors.CustomOIDCProviderError(outcome.error, outcome.description);
    ctx.body = outcome.body;
  }, ['assertion', 'scope']);
  provider.use(clientlessJwtBearer(provider, bearer));
}

function clientlessJwtBearer(provider: Provider, bearer: JwtBearerExchange): Middleware {
  return async (ctx, next) => {
    await next();
    const oidc = (ctx as Partial<KoaContextWithOIDC>).oidc;
    if (oidc?.route !== 'token' || ctx.status !== 400 || oidc.entities.Client) return;
    // Only the provider's refusal for naming no client; any other 400 (a repeated
    // parameter, say) is its own answer and stands.
    if ((ctx.body as { error_description?: unknown } | undefined)?.error_description !== NO_CLIENT_AUTHENTICATION) return;
    const params = oidc.params as Record<string, unknown> | undefined;
    if (params?.grant_type !== JWT_BEARER_GRANT) return;
    const presentedClientAuth = params.client_id !== undefined || params.client_assertion !== undefined
      || params.client_secret !== undefined || ctx.get('authorization') !== '';
    if (presentedClientAuth) return;
    // The provider refuses repeated parameters after client authentication, which this
    // request never reached: the same answer, in its words.
    const repeated = ['assertion', 'scope'].filter((name) => Array.isArray(params[name]));
    if (repeated.length) {
      ctx.body = { error: 'invalid_request', error_description: `${repeated.join(', ')} ${repeated.length > 1 ? 'parameters' : 'parameter'} must not be provided twice` };
      return;
    }

    const client = await bearer.defaultClient(provider);
    const outcome = await bearer.exchange(provider, client, {
      assertion: params.assertion,
      scope: params.scope,
      facts: requestFacts(ctx),
      endpoint: OAUTH_TOKEN_PATH,
      dpop: ctx.get('dpop'),
    });
    ctx.status = outcome.ok ? 200 : 400;
    ctx.body = outcome.ok ? outcome.body : { error: outcome.error, error_description: outcome.description };
    ctx.type = 'application/json';
  };
}
