import { apiAudienceOf } from '../config/load.ts';
import type { Config } from '../config/schema.ts';
import type { ScopeCatalog } from '../domain/scopes.ts';

/**
 * The resource server every access token is for (our API): its audience, the scopes it
 * knows and the JWT format. The provider's resourceIndicators and the first-party login
 * both use it, so their tokens cannot differ.
 */
export function apiResourceServerInfo(config: Config, scopeCatalog: ScopeCatalog, accessTokenTtl: number) {
  return {
    scope: Object.keys(scopeCatalog).filter((s) => s !== 'offline_access').join(' '),
    audience: apiAudienceOf(config),
    accessTokenTTL: accessTokenTtl,
    accessTokenFormat: 'jwt' as const,
    jwt: { sign: { alg: config.accessTokenAlg } },
  };
}
