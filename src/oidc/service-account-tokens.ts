import type Provider from 'oidc-provider';
import type { Client } from 'oidc-provider';
import { epochSeconds, type Clock } from '../clock.ts';
import type { Config } from '../config/schema.ts';
import type { ScopeCatalog } from '../domain/scopes.ts';
import type { ServiceAccount } from '../domain/service-accounts.ts';
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

/**
 * Issues a service account's access token through the provider's own models, so it is
 * the same JWT as every other token (keys, `typ`, `aud`, `scope` and `scopes`), with the
 * account as `sub`. Each token gets its own grant, saved with the account id: the
 * adapter indexes it per account, so disabling or deleting the account (or a logout
 * with the token) revokes it at once through the grant (`gid`), like a user's login.
 */
export function createServiceAccountTokenMinter(deps: { config: Config; clock: Clock; scopeCatalog: ScopeCatalog; tokenTtl: () => number }) {
  const { config, clock, scopeCatalog, tokenTtl } = deps;

  async function mint(provider: Provider, client: Client, account: ServiceAccount, scopes: string[]): Promise<TokenResponse> {
    const ttl = tokenTtl();
    const now = epochSeconds(clock);
    const scope = scopes.join(' ');
    const info = apiResourceServerInfo(config, scopeCatalog, ttl);
    const resourceServer = new provider.ResourceServer(info.audience, info);

    const grant = new provider.Grant({ accountId: account.id, clientId: client.clientId });
    if (scope) grant.addResourceScope(resourceServer.identifier(), scope);
    // The grant lives exactly as long as its one token; times follow the injected clock.
    grant.iat = now;
    grant.exp = now + ttl;
    const grantId = await grant.save();

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
    const accessToken = await token.save();
    return { access_token: accessToken, token_type: 'Bearer', expires_in: ttl, scope };
  }

  return { mint };
}

export type ServiceAccountTokenMinter = ReturnType<typeof createServiceAccountTokenMinter>;
