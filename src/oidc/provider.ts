import Provider, { type Client, type Configuration, type KoaContextWithOIDC, errors as oidcErrors } from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { apiAudienceOf } from '../config/load.ts';
import { createAdapterFactory } from './adapter.ts';
import { DPOP_PROOF_ALGS } from '../domain/dpop-proof.ts';
import { consentPolicy } from './consent-policy.ts';
import { providerSigningKeys } from './node-signing-key.ts';
import { oidcScopes, parseScope } from '../domain/scopes.ts';
import { html, SafeHtml } from '../../views/html.ts';
import { renderMessage } from '../../views/message.ts';
import { createFindAccount } from './find-account.ts';
import { perRequest } from './per-request.ts';
import { jwtTokenEndpointsMiddleware } from './jwt-token-endpoints.ts';
import { registerJwtBearerGrant } from './jwt-bearer-grant.ts';
import { isServiceAccountId } from '../domain/service-accounts.ts';
import { checkedOwnerOf } from './checked-owner.ts';
import { SIGNING_ALGS } from '../domain/signing-algs.ts';
import { apiResourceServerInfo } from './resource-server.ts';
import { atomicReplayDetection } from './replay-detection.ts';

/** Seconds a browser session with no sign-in in it is kept (see ttl.Session). */
export const ANONYMOUS_SESSION_TTL = 900;

export const oauthRoutes = {
  authorization: '/oauth/authorize',
  token: '/oauth/token',
  introspection: '/oauth/introspect',
  revocation: '/oauth/revoke',
  userinfo: '/oauth/userinfo',
  jwks: '/oauth/jwks',
  end_session: '/oauth/logout',
  pushed_authorization_request: '/oauth/par',
  device_authorization: '/oauth/device/auth',
  code_verification: '/oauth/device',
  registration: '/oauth/register',
  backchannel_authentication: '/oauth/backchannel',
  challenge: '/oauth/challenge',
} as const;

/** JWS algorithms we sign and accept; symmetric ones are left out on purpose (client secrets are stored hashed). */
const asymmetricAlgs = [...SIGNING_ALGS];

/**
 * Builds the oidc-provider instance from our dependencies. Called again (cheaply) when
 * the signing keys rotate, because the provider's keystore is fixed at construction.
 */
export function buildProvider(deps: Deps): Provider {
  const { config, store, clients, keyRing, secrets, scopeCatalog, clock } = deps;
  const audience = apiAudienceOf(config);
  const allScopes = Object.keys(scopeCatalog);
  const userOfRequest = perRequest((id) => deps.users.findById(id));

  const configuration: Configuration = {
    adapter: createAdapterFactory({
      store, clients, clock, secrets,
      currentRequest: () => Provider.ctx,
      // The user behind a code or refresh token being redeemed, read alongside its grant.
      onRedeemableFound: (request, payload) => {
        if (payload.accountId && !isServiceAccountId(payload.accountId)) userOfRequest(request, payload.accountId).catch(() => undefined);
      },
    }),
    clients: [],
    findAccount: createFindAccount(deps, userOfRequest),
    jwks: { keys: providerSigningKeys(keyRing.providerJwks().keys) } as Configuration['jwks'],
    cookies: {
      keys: secrets.cookieKeys,
      long: { signed: true, httpOnly: true, sameSite: 'lax' },
      short: { signed: true, httpOnly: true, sameSite: 'lax' },
    },
    routes: oauthRoutes,
    scopes: allScopes,
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'updated_at'],
    },
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
      policy: consentPolicy(async (accountId) => (await deps.users.findById(accountId))?.scopes ?? []),
    },
    features: {
      devInteractions: { enabled: false },
      // Lets node:crypto make ECDSA and Ed25519 signatures (see node-signing-key.ts).
      externalSigningSupport: { enabled: true, ack: 'experimental-01' },
      // Confidential clients (resource servers) may introspect any access token; public ones
      // only their own. A refresh token only by its own client: another would be told it is
      // active, and a resource server that looks only at `active` and `scope` would take it as
      // an access token, without the client's secret and without ever spending it.
      introspection: {
        enabled: true,
        allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId
          || (token.kind !== 'RefreshToken' && client.clientAuthMethod !== 'none'),
      },
      // RFC 7009 §2.1: a client revokes only tokens issued to it.
      revocation: { enabled: true, allowedPolicy: async (_ctx, client, token) => token.clientId === client.clientId },
      userinfo: { enabled: true },
      clientCredentials: { enabled: true },
      pushedAuthorizationRequests: { enabled: true, requirePushedAuthorizationRequests: false },
      dPoP: { enabled: true },
      rpInitiatedLogout: {
        enabled: true,
        logoutSource: async (ctx, form) => {
          ctx.body = renderMessage('Sign out', ['Do you want to sign out?'], html`${rawHtml(form)}
            <button type="submit" form="op.logoutForm" value="yes" name="logout">Yes, sign me out</button>
            <button type="submit" form="op.logoutForm" class="secondary">No, stay signed in</button>`);
        },
        postLogoutSuccessSource: async (ctx) => {
          ctx.body = renderMessage('Signed out', ['You have been signed out.']);
        },
      },
      deviceFlow: {
        enabled: true,
        userCodeInputSource: async (ctx, form, _out, err) => {
          const message = deviceCodeMessage(err);
          ctx.body = renderMessage('Connect a device', [message], html`${rawHtml(form)}<button type="submit" form="op.deviceInputForm">Continue</button>`);
        },
        userCodeConfirmSource: async (ctx, form, client, _info, userCode) => {
          ctx.body = renderMessage('Confirm the device', [
            html`<strong>${client.clientName ?? client.clientId}</strong> wants access. Check that your device shows this code:`,
          ], html`<code class="big">${userCode}</code>${rawHtml(form)}
            <button type="submit" form="op.deviceConfirmForm">Continue</button>
            <button type="submit" form="op.deviceConfirmForm" value="yes" name="abort" class="secondary">Abort</button>`);
        },
        successSource: async (ctx) => {
          ctx.body = renderMessage('Device connected', ['You can close this window and return to your device.']);
        },
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => audience,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx, resource) => {
          if (resource !== audience) throw new oidcErrors.InvalidTarget();
          return apiResourceServerInfo(config, scopeCatalog, deps.settings.current().tokens.accessTokenTtl);
        },
      },
    },
    formats: {
      customizers: {
        // RFC 9068 plus the `scopes` array the guide's hasScope() reads, and the grant id
        // so that revoking a login also revokes its JWT access tokens. A user's token never
        // carries a scope the user no longer holds, nor one its client is no longer
        // registered for, whatever the grant or refresh token once recorded.
        jwt: async (ctx, token, jwt) => {
          let scopes = parseScope(jwt.payload.scope as string | undefined);
          const { accountId, grantId } = token as { accountId?: string; grantId?: string };
          const clientScopes = registeredScopesOf(ctx, token);
          if (clientScopes) {
            scopes = scopes.filter((s) => isOidcScope(s) || clientScopes.has(s));
            jwt.payload.scope = scopes.join(' ') || undefined;
          }
          if (accountId) {
            // A service account (sa_…) is held to its current scopes the same way. The owner
            // as the minting code has just read it (checked-owner.ts), else read now.
            const owner = checkedOwnerOf(token) ?? (isServiceAccountId(accountId)
              ? await deps.serviceAccounts.get(accountId)
              : await userOfRequest(ctx, accountId));
            const held = new Set(owner?.scopes ?? []);
            scopes = scopes.filter((s) => isOidcScope(s) || held.has(s));
            jwt.payload.scope = scopes.join(' ') || undefined;
          }
          jwt.payload.scopes = scopes;
          if (grantId) jwt.payload.gid = grantId;
          // The token response's `scope` is read from the token after this: it must name
          // what the JWT carries, not what the grant once recorded (RFC 6749 §5.1).
          (token as { scope?: string }).scope = jwt.payload.scope as string | undefined;
        },
      },
    },
    // Public clients, and every native app (RFC 8252 §8.1): any process on the device can
    // receive a loopback or private-use-scheme redirect, and a native app's secret is no secret.
    pkce: { required: (_ctx, client) => client.clientAuthMethod === 'none' || client.applicationType === 'native' },
    issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
    rotateRefreshToken: true,
    // A login without offline_access lives with the browser session it came from, as
    // OpenID Connect means it: signing out (RP-initiated logout) ends the apps' grants, and
    // their refresh tokens, with the session; offline_access ones outlive it.
    expiresWithSession: async (_ctx, token) => !token.scopes.has('offline_access'),
    // Token lifetimes follow the runtime policy (/v1/admin/settings): the provider asks per token.
    ttl: {
      AccessToken: () => deps.settings.current().tokens.accessTokenTtl,
      ClientCredentials: () => deps.settings.current().tokens.accessTokenTtl,
      AuthorizationCode: config.authorizationCodeTtl,
      IdToken: () => deps.settings.current().tokens.idTokenTtl,
      RefreshToken: (ctx) => refreshTokenTtl(ctx, deps.settings.current().tokens.refreshTokenTtl),
      // A grant must outlive the longest refresh token issued from it (see refreshTokenTtl).
      Grant: () => deps.settings.current().tokens.refreshTokenTtl + 3600,
      // A session nobody has signed in to holds only an anti-forgery secret (a visit to the
      // device-code or logout page makes one): kept 15 minutes, not SESSION_TTL, so that
      // anonymous visits cannot pile up in the store for two weeks.
      Session: (_ctx, session) => (session.accountId ? config.sessionTtl : ANONYMOUS_SESSION_TTL),
      Interaction: 3600,
      DeviceCode: 600,
      BackchannelAuthenticationRequest: 600,
    },
    enabledJWA: {
      clientAuthSigningAlgValues: asymmetricAlgs as never,
      idTokenSigningAlgValues: asymmetricAlgs as never,
      requestObjectSigningAlgValues: asymmetricAlgs as never,
      userinfoSigningAlgValues: asymmetricAlgs as never,
      introspectionSigningAlgValues: asymmetricAlgs as never,
      authorizationSigningAlgValues: asymmetricAlgs as never,
      dPoPSigningAlgValues: [...DPOP_PROOF_ALGS] as never,
    },
    clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    clientDefaults: {
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
      id_token_signed_response_alg: 'RS256',
    },
    responseTypes: ['code', 'none'],
    // The same allow-list as the CORS middleware in front (src/http/koa-cors.ts), read per request.
    clientBasedCORS: (_ctx, origin) => deps.settings.current().corsOrigins.includes(origin),
    renderError: async (ctx, out) => {
      ctx.type = 'html';
      ctx.body = renderMessage('Something went wrong', [
        out.error_description ? String(out.error_description) : 'The request could not be completed.',
        html`<span class="note">${out.error}</span>`,
      ]);
    },
  };

  const provider = new Provider(config.publicUrl, configuration);
  provider.proxy = config.trustProxy;
  pinUrlsToPublicUrl(provider, config.publicUrl);

  // Client secrets are stored as keyed hashes; compare the presented one that way.
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientSecret?: string }, actual: string) {
    return clients.secretMatches(actual, this.clientSecret);
  };
  // Client assertions and DPoP proofs: one jti, one use, also under concurrent requests.
  atomicReplayDetection(provider, { store, clock });

  provider.use(jwtTokenEndpointsMiddleware(deps));
  // RFC 7523 JWT-bearer grant for service accounts (also serves /v1/auth/service-account/token).
  registerJwtBearerGrant(provider, deps);
  return provider;
}

/**
 * The lifetime of a refresh token about to be saved. A fresh login's first refresh token
 * gets the full `tokens.refreshTokenTtl`; one replacing a rotated token (refresh_token
 * grant, rotateRefreshToken) gets only what remained of that one. Rotation therefore never
 * extends an OAuth login, the rule the first-party login follows too (first-party-tokens.ts):
 * a sliding lifetime would outlive the login's Grant, whose TTL (ttl.Grant) is fixed when
 * it is saved, and the client would meet invalid_grant before its refresh token's `exp`.
 */
function refreshTokenTtl(ctx: KoaContextWithOIDC | undefined, fullTtl: number): number {
  const entities = ctx?.oidc?.entities;
  const rotated = entities?.RotatedRefreshToken;
  // Never past the login's grant either: its TTL was fixed at consent, and a later code of
  // the same session (no new consent), or a longer tokens.refreshTokenTtl set since, would
  // otherwise outlive it.
  const grantLeft = (entities?.Grant as { remainingTTL?: number } | undefined)?.remainingTTL ?? Infinity;
  // The grant has just been checked unexpired; a second boundary since then must not make
  // this zero, which the provider refuses as a TTL.
  return Math.max(1, Math.min(rotated ? rotated.remainingTTL : fullTtl, grantLeft));
}

/**
 * The scopes the client of a token about to be signed is registered for now: its `scope`
 * metadata as loaded for this request (clients are read from the store on every use), or
 * as the minting code loaded it outside a provider request (first-party login). Undefined
 * when unknown or unrestricted (no or an empty `scope`, which the provider reads as "any").
 * An admin narrowing a client (PATCH /v1/admin/clients/:id) revokes nothing, so grants
 * and refresh tokens issued before still name the removed scopes; the JWT customizer
 * drops them from every access token signed from then on.
 */
function registeredScopesOf(ctx: KoaContextWithOIDC | undefined, token: { clientId?: string; client?: Client }): ReadonlySet<string> | undefined {
  const client = ctx?.oidc?.client?.clientId === token.clientId ? ctx?.oidc?.client : token.client;
  if (!client?.scope || client.clientId !== token.clientId) return undefined;
  let scopes = scopeSets.get(client.scope);
  if (!scopes) {
    if (scopeSets.size >= MAX_SCOPE_SETS) scopeSets.clear();
    scopes = new Set(parseScope(client.scope));
    scopeSets.set(client.scope, scopes);
  }
  return scopes;
}

/** Registered scope strings, parsed once each: every token signed asks (a handful of distinct strings, bounded anyway). */
const scopeSets = new Map<string, ReadonlySet<string>>();
const MAX_SCOPE_SETS = 1000;

/** Marks provider-generated form markup (already escaped by the provider) as safe. */
function rawHtml(markup: string): SafeHtml {
  return new SafeHtml(markup);
}

export type OidcContext = KoaContextWithOIDC;
export const isOidcScope = (scope: string): boolean => (oidcScopes as readonly string[]).includes(scope);

/**
 * The provider builds the URLs it prints on the request's Host header, which any client
 * sets as it likes. Where they are advertised to others, and may be cached on the way,
 * they are built on PUBLIC_URL instead, like the issuer: discovery's endpoints and the
 * device grant's verification_uri. A browser's redirects between the provider's own pages
 * stay on the host it used, so that its cookies come along (the host it sent is only its own).
 */
const ADVERTISING_ROUTES = new Set(['discovery', 'device_authorization']);

function pinUrlsToPublicUrl(provider: Provider, publicUrl: string): void {
  const origin = new URL(publicUrl).origin;
  type MountedRequest = { originalUrl?: string; baseUrl?: string };
  const context = provider.OIDCContext.prototype as unknown as {
    urlFor(name: string, opt?: object): string;
    route: string;
    ctx: KoaContextWithOIDC & { mountPath?: string };
  };
  const requestBased = context.urlFor;
  // The audiences a client assertion (private_key_jwt) may name: oidc-provider builds them
  // on the request's Host header, so a forged Host made an assertion meant for another
  // server good here. Ours are the issuer and our endpoints as PUBLIC_URL names them.
  (context as unknown as { clientJwtAuthExpectedAudience(): Set<string> }).clientJwtAuthExpectedAudience = function expectedAudience(this: typeof context) {
    const pinned = (name: string) => new URL(provider.pathFor(name), origin).href;
    return new Set([provider.issuer, pinned('token'), pinned(this.route)]);
  };
  context.urlFor = function urlFor(name, opt) {
    if (!ADVERTISING_ROUTES.has(this.route)) return requestBased.call(this, name, opt);
    // Where the provider is mounted, found as the provider itself finds it.
    const { originalUrl, baseUrl } = this.ctx.req as MountedRequest;
    const mountPath = originalUrl?.substring(0, originalUrl.indexOf(this.ctx.request.url)) || this.ctx.mountPath || baseUrl || '';
    return new URL(provider.pathFor(name, { mountPath, ...opt }), origin).href;
  };
}

// oidc-provider's messages for a device form whose xsrf token fails (shared/xsrf.js, actions/code_verification.js).
const FORM_EXPIRED = new Set(['xsrf token invalid', 'could not find device form details']);

/** What the device page tells the user after an attempt; the provider's error class names what went wrong. */
export function deviceCodeMessage(err: (Error & { error_description?: string }) | undefined): string {
  if (!err || err.name === 'NoCodeError') return 'Enter the code shown on your device.';
  switch (err.name) {
    case 'ExpiredError':
      return 'That code has expired. Start again on your device to get a new one.';
    case 'AlreadyUsedError':
      return 'That code has already been used. Start again on your device to get a new one.';
    case 'AbortedError':
      return 'Cancelled: the device was not connected. To connect a device, enter the code it shows.';
    default:
      // The form's anti-forgery token is missing from its session or does not match it: the
      // page was open too long, or was sent from another browser.
      if (FORM_EXPIRED.has(err.error_description ?? '')) return 'This page expired before the code was sent. Enter the code again.';
      return 'That code is not valid. Check it and try again.';
  }
}
