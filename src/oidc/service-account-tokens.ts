import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import { epochSeconds, type Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { ScopeCatalog } from '../domain/scopes.ts';
import type { ServiceAccount, ServiceAccountKey, ServiceAccountRepository } from '../domain/service-accounts.ts';
import { rememberCheckedOwner } from './checked-owner.ts';
import { apiResourceServerInfo } from './resource-server.ts';

export const JWT_BEARER_GRANT = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
/** The first-party alias of the token endpoint for this grant (DESIGN.md). */
export const SERVICE_ACCOUNT_TOKEN_PATH = '/v1/auth/service-account/token';

/** RFC 6749 §5.1 successful token response. */
export interface TokenResponse {
  access_token: string;
  token_type: 'Bearer';
  expires_in: number;
  scope: string;
}

export type MintOutcome = { ok: true; body: TokenResponse } | { ok: false; reason: 'disabled' | 'key_retired' };

/**
 * Issues a service account's access token through the provider's own models, so it is
 * the same JWT as every other token (keys, `typ`, `aud`, `scope` and `scopes`), with the
 * account as `sub`. Each token gets its own grant, saved with the account id: the
 * adapter indexes it per account, so disabling or deleting the account (or a logout
 * with the token) revokes it at once through the grant (`gid`), like a user's login.
 *
 * The account is read once more after its grant is indexed and before the token is
 * signed. A disable or delete that raced this request may have swept the account's grants
 * before this one was indexed: that read sees it, and nothing is signed (the caller then
 * revokes what the account still holds). The same read decides the scopes the token
 * carries (those asked for that the account still holds) and that the key which signed the
 * assertion is still active (the assertion was checked against a copy from the credential
 * cache, which a retirement on another instance reaches within milliseconds).
 */
export function createServiceAccountTokenMinter(deps: { config: Config; clock: Clock; scopeCatalog: ScopeCatalog; accounts: Pick<ServiceAccountRepository, 'get'>; tokenTtl: () => number }) {
  const { config, clock, scopeCatalog, accounts, tokenTtl } = deps;

  async function mint(provider: Provider, client: Client, account: ServiceAccount, signedBy: Pick<ServiceAccountKey, 'kid' | 'thumbprint'>, scopes: string[]): Promise<MintOutcome> {
    const ttl = tokenTtl();
    const now = epochSeconds(clock);
    const info = apiResourceServerInfo(config, scopeCatalog, ttl);
    const resourceServer = new provider.ResourceServer(info.audience, info);

    const grant = new provider.Grant({ accountId: account.id, clientId: client.clientId });
    if (scopes.length) grant.addResourceScope(resourceServer.identifier(), scopes.join(' '));
    // The grant lives exactly as long as its one token; times follow the injected clock.
    grant.iat = now;
    grant.exp = now + ttl;
    const grantId = await grant.save();

    const current = await accounts.get(account.id);
    if (!current || current.disabled) return { ok: false, reason: 'disabled' };
    // The key that signed the assertion was checked on a copy that may be older than this read.
    // By kid and key material: a kid could name other material by now.
    if (!current.keys.some((k) => k.kid === signedBy.kid && k.thumbprint === signedBy.thumbprint && k.status === 'active')) {
      await grant.destroy();
      return { ok: false, reason: 'key_retired' };
    }
    const scope = scopes.filter((s) => current.scopes.includes(s)).join(' ');

    const token = new provider.AccessToken({
      client,
      accountId: account.id,
      grantId,
      gty: JWT_BEARER_GRANT,
      scope: scope || undefined,
    });
    token.resourceServer = resourceServer;
    token.iat = now;
    token.exp = now + ttl;
    rememberCheckedOwner(token, current);
    const accessToken = await token.save();
    return { ok: true, body: { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope } };
  }

  return { mint };
}

export type ServiceAccountTokenMinter = ReturnType<typeof createServiceAccountTokenMinter>;
