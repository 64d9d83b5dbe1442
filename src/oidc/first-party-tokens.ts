import { createHmac } from 'node:crypto';
import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import { epochSeconds } from '../clock.ts';
import { apiAudienceOf } from '../config/load.ts';
import type { Deps } from '../deps.ts';
import type { RequestFacts } from '../domain/audit.ts';
import { generateClientSecret } from '../domain/clients.ts';
import { apiScopesOf, parseScope } from '../domain/scopes.ts';
import { constantTimeEqual } from '../domain/secrets.ts';
import type { User } from '../domain/users.ts';
import { AppError } from '../errors/app-error.ts';
import { invalidToken } from '../http/credentials.ts';
import { revokeGrant } from './account-sessions.ts';
import { rememberCheckedOwner } from './checked-owner.ts';
import { apiResourceServerInfo } from './resource-server.ts';

/**
 * The client the first-party login (/v1/auth/login) issues its tokens to. Nobody knows its
 * secret, so its refresh tokens cannot be used at /oauth/token: only /v1/auth/refresh,
 * which applies the rotation rules below, accepts them.
 */
export const FIRST_PARTY_CLIENT_ID = 'nopesight-first-party';
const GRANT_TYPE_LABEL = 'first_party_login';
const USED_PURPOSE = 'refresh-used';
const CSRF_PURPOSE = 'refresh-csrf';
/** Refresh tokens are 43 characters; anything much longer is not one of ours. */
const MAX_REFRESH_TOKEN_LENGTH = 256;

export async function registerFirstPartyClient(deps: Pick<Deps, 'clients' | 'scopeCatalog'>): Promise<void> {
  await deps.clients.save({
    client_id: FIRST_PARTY_CLIENT_ID,
    client_name: 'NopeSight first-party login',
    grant_types: ['refresh_token'],
    response_types: [],
    redirect_uris: [],
    token_endpoint_auth_method: 'client_secret_basic',
    scope: apiScopesOf(deps.scopeCatalog).join(' '),
  }, generateClientSecret());
}

export interface IssuedTokens {
  token: string;
  refreshToken: string;
  /** Seconds the access token lives. */
  expiresIn: number;
  tokenType: 'Bearer';
  /** The login the tokens belong to (an oidc-provider Grant): the refresh-token family. */
  grantId: string;
  /** Epoch seconds when the refresh token, and with it the login, ends. */
  refreshExpiresAt: number;
}

interface Family {
  accountId: string;
  grantId: string;
  scope: string;
  amr: string[];
  authTime: number;
  /** When the family's first refresh token was issued (epoch seconds). */
  iiat: number;
  rotations: number;
  /** The end of the login: every refresh token of the family expires then. */
  exp: number;
}

/**
 * Tokens of the first-party login, minted through oidc-provider's own models so they are
 * the same JWT access tokens (same keys, `scopes`, `gid`, introspection, deny-list) and
 * stored refresh tokens (keyed-hash ids) as the OAuth flows issue.
 *
 * A login is one Grant: its refresh tokens form one family. Each refresh consumes the
 * presented token with one atomic SET NX; presenting a consumed token again (a replay,
 * or a lost race) destroys the grant, which ends every refresh and access token of that
 * login (RFC 9700 §4.14.2), and is written to the audit trail.
 */
export function createFirstPartyTokens(
  deps: Pick<Deps, 'config' | 'clock' | 'store' | 'secrets' | 'users' | 'audit' | 'scopeCatalog' | 'settings' | 'clients'>,
  provider: () => Provider,
) {
  const { config, clock, store, secrets, users, audit, scopeCatalog, settings } = deps;
  const audience = apiAudienceOf(config);
  // A 401 names its challenge (RFC 9110 §15.5.2), as every INVALID_TOKEN of /v1 does.
  const invalidRefreshToken = () => invalidToken(config.publicUrl, 'Invalid or expired refresh token');
  const usedKey = (refreshToken: string) => `refresh-used:${secrets.keyedHash(USED_PURPOSE, refreshToken)}`;

  /** The first-party client, registered again should it have gone missing (e.g. removed by an admin). */
  async function firstPartyClient(p: Provider): Promise<Client> {
    let client = await p.Client.find(FIRST_PARTY_CLIENT_ID);
    if (!client) {
      await registerFirstPartyClient(deps);
      client = await p.Client.find(FIRST_PARTY_CLIENT_ID);
    }
    if (!client) throw new Error(`client ${FIRST_PARTY_CLIENT_ID} cannot be loaded`);
    return client;
  }

  /** The user's API scopes the resource server knows: what the login's tokens may carry. */
  function grantableScope(held: readonly string[], from: readonly string[]): string {
    const known = new Set(parseScope(apiResourceServerInfo(config, scopeCatalog, 0).scope));
    const heldSet = new Set(held);
    return from.filter((s) => known.has(s) && heldSet.has(s)).join(' ');
  }

  /**
   * `checkedOwner`: the user as this request read it together with the login's grant, when
   * it did (a refresh): the token's scopes are narrowed to that read. A scope removed after
   * it is followed by the revocation of the user's grants, this one included. Without it
   * (a new login, whose grant is saved after the user was read) the token's signing reads
   * the user again.
   */
  async function mint(p: Provider, client: Client, family: Family, checkedOwner?: User): Promise<IssuedTokens> {
    const { accessTokenTtl } = settings.current().tokens;
    const now = epochSeconds(clock);

    const refresh = new p.RefreshToken({
      client,
      accountId: family.accountId,
      grantId: family.grantId,
      gty: GRANT_TYPE_LABEL,
      scope: family.scope,
      resource: audience,
      amr: family.amr,
      authTime: family.authTime,
      iiat: family.iiat,
      rotations: family.rotations,
    });
    refresh.iat = now;
    refresh.exp = family.exp;
    const refreshToken = await refresh.save();

    const access = new p.AccessToken({ client, accountId: family.accountId, grantId: family.grantId, gty: GRANT_TYPE_LABEL });
    access.resourceServer = new p.ResourceServer(audience, apiResourceServerInfo(config, scopeCatalog, accessTokenTtl));
    access.scope = family.scope;
    access.iat = now;
    access.exp = now + accessTokenTtl;
    if (checkedOwner) rememberCheckedOwner(access, checkedOwner);
    const token = await access.save();

    return { token, refreshToken, expiresIn: accessTokenTtl, tokenType: 'Bearer', grantId: family.grantId, refreshExpiresAt: family.exp };
  }

  /**
   * A new login for a user who has just signed in: a grant, a refresh token and an access
   * token. `user` is the account as its password was checked.
   */
  async function issue(user: User, amr: string[]): Promise<IssuedTokens> {
    const p = provider();
    const client = await firstPartyClient(p);
    const { refreshTokenTtl } = settings.current().tokens;
    const now = epochSeconds(clock);
    const scope = grantableScope(user.scopes, user.scopes);

    const grant = new p.Grant({ accountId: user.id, clientId: FIRST_PARTY_CLIENT_ID });
    if (scope) grant.addResourceScope(audience, scope);
    grant.iat = now;
    // Rotation never extends a login: the grant and every refresh token end together.
    grant.exp = now + refreshTokenTtl;
    const grantId = await grant.save();
    // Read again now that the grant is saved: disabled, or every login ended (a password
    // reset, "revoke sessions") since the password was checked, and the sweep may have
    // missed this grant, so it goes now. The same read gives the token its scopes.
    const owner = await users.findById(user.id);
    if (!owner || owner.disabled || owner.loginsEndedAt !== user.loginsEndedAt) {
      await revokeGrant(store, grantId);
      throw new AppError('AUTH_FAILED');
    }
    return mint(p, client, { accountId: user.id, grantId, scope, amr, authTime: now, iiat: now, rotations: 0, exp: grant.exp }, owner);
  }

  /** The CSRF token cookie-mode clients send with a refresh: bound to the login, unforgeable. */
  const csrfTokenFor = (grantId: string): string =>
    createHmac('sha256', secrets.macKey(CSRF_PURPOSE)).update(grantId).digest('base64url');

  /**
   * Trades a refresh token for a new pair. Options: `csrfToken` (cookie mode) must match
   * the login's CSRF token. Throws 401 INVALID_TOKEN for anything not currently valid.
   */
  async function refresh(value: string, facts: RequestFacts, options: { csrfToken?: string } = {}): Promise<IssuedTokens> {
    if (value.length > MAX_REFRESH_TOKEN_LENGTH) throw invalidRefreshToken();
    const p = provider();
    const presented = await p.RefreshToken.find(value, { ignoreExpiration: true });
    if (!presented?.grantId || presented.clientId !== FIRST_PARTY_CLIENT_ID) throw invalidRefreshToken();
    const grantId = presented.grantId;
    if (options.csrfToken !== undefined && !constantTimeEqual(csrfTokenFor(grantId), options.csrfToken)) {
      throw new AppError('FORBIDDEN', { message: 'CSRF token missing or invalid' });
    }
    const remainingMs = (presented.exp ?? 0) * 1000 - clock.now();
    if (remainingMs <= 0) throw invalidRefreshToken();

    const claimed = !presented.consumed && (await store.set(usedKey(value), '1', { onlyIfAbsent: true, ttlMs: remainingMs }));
    if (!claimed) {
      await revokeGrant(store, grantId);
      await audit.record({
        type: 'token.refresh_reuse', outcome: 'failure', actor: presented.accountId, ...facts,
        details: { grantId, clientId: FIRST_PARTY_CLIENT_ID, rotations: presented.rotations ?? 0 },
      });
      throw invalidRefreshToken();
    }
    // Marks the stored token consumed too, so /oauth/introspect reports it inactive.
    await presented.consume();

    const [grant, user] = await Promise.all([p.Grant.find(grantId), users.findById(presented.accountId)]);
    if (!grant || !user || user.disabled) {
      await revokeGrant(store, grantId);
      throw invalidRefreshToken();
    }
    // Scopes the user has lost since signing in are dropped from the family for good.
    const scope = grantableScope(user.scopes, parseScope(presented.scope));
    return mint(p, await firstPartyClient(p), {
      accountId: user.id,
      grantId,
      scope,
      amr: presented.amr ?? [],
      authTime: presented.authTime ?? presented.iat,
      iiat: presented.iiat ?? presented.iat,
      rotations: (presented.rotations ?? 0) + 1,
      exp: presented.exp!,
    }, user);
  }

  /** Ends a login: its grant, every refresh token of the family and (through `gid`) its access tokens. */
  async function logout(userId: string, grantId: string, facts: RequestFacts): Promise<void> {
    await revokeGrant(store, grantId);
    await audit.record({ type: 'logout', outcome: 'success', actor: userId, ...facts, details: { grantId } });
  }

  /** The user and login a first-party refresh token belongs to, while it is stored; undefined otherwise. */
  async function loginOf(value: string): Promise<{ userId: string; grantId: string } | undefined> {
    if (value.length > MAX_REFRESH_TOKEN_LENGTH) return undefined;
    const found = await provider().RefreshToken.find(value, { ignoreExpiration: true });
    if (!found?.grantId || !found.accountId || found.clientId !== FIRST_PARTY_CLIENT_ID) return undefined;
    return { userId: found.accountId, grantId: found.grantId };
  }

  return { issue, refresh, logout, loginOf, csrfTokenFor };
}

export type FirstPartyTokens = ReturnType<typeof createFirstPartyTokens>;
