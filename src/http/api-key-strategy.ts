import { requestFacts } from './request-facts.ts';
import type { Context } from 'koa';
import type { Deps } from '../deps.ts';
import { invalidToken, type CredentialStrategy } from './credentials.ts';
import type { Principal } from './principal.ts';
import type { ApiKeyMatch } from '../domain/api-keys.ts';

export const API_KEY_HEADER = 'x-api-key';
export const API_KEY_QUERY = 'api_key';
/** RFC 7234 §5.5 warn-code 299 ("miscellaneous persistent warning"). */
export const QUERY_KEY_WARNING = '299 - "api_key in the query string is deprecated; use the X-API-Key header"';

/**
 * Forward-auth checks see the client's request only through the gateway: nginx
 * `auth_request` passes it as `X-Original-URI` (by convention, see the README), Traefik
 * ForwardAuth as `X-Forwarded-Uri`; the subrequest itself has no query string. On the
 * verify endpoint, `?api_key=` is looked for there too.
 */
export const FORWARDED_URI_HEADERS = ['x-original-uri', 'x-forwarded-uri'] as const;
const FORWARD_AUTH_PATH = /^\/v1\/auth\/verify(\/|$)/;

function single(values: string[], realm: string): string | undefined {
  if (values.length > 1) throw invalidToken(realm, 'Present exactly one credential');
  return values[0];
}

/** `?api_key=` exactly once (own query, or on the verify endpoint the forwarded one), or undefined. */
function queryKey(ctx: Context, realm: string): string | undefined {
  const own = ctx.query[API_KEY_QUERY];
  if (own !== undefined) return single(Array.isArray(own) ? own : [own], realm);
  if (!FORWARD_AUTH_PATH.test(ctx.path)) return undefined;
  for (const name of FORWARDED_URI_HEADERS) {
    const uri = ctx.get(name);
    const q = uri.indexOf('?');
    if (q !== -1) return single(new URLSearchParams(uri.slice(q + 1)).getAll(API_KEY_QUERY), realm);
  }
  return undefined;
}

const principalOfKey = (match: ApiKeyMatch): Principal => ({
  type: 'api_key',
  subject: match.ownerId,
  scopes: match.scopes,
  credentialId: match.keyId,
  expiresAt: Math.floor(match.expiresAt / 1000),
});

/**
 * API keys as a credential: `X-API-Key: <key>`, or `?api_key=<key>` when the runtime
 * policy allows it. The query form answers with a `Warning` header; it is never logged
 * (the request log strips it, see `safePath`). Both forms at once are refused.
 */
export function apiKeyStrategy(deps: Pick<Deps, 'apiKeys' | 'settings' | 'logger' | 'config'>): CredentialStrategy {
  const realm = deps.config.publicUrl;
  return {
    name: 'api_key',
    extract(ctx) {
      const header = ctx.get(API_KEY_HEADER) || undefined;
      const query = queryKey(ctx, realm);
      if (query === undefined) return header?.trim();
      if (!deps.settings.current().apiKeys.allowQueryParam) {
        throw invalidToken(realm, 'API keys in the query string are disabled; use the X-API-Key header');
      }
      if (header !== undefined) throw invalidToken(realm, 'Present exactly one credential');
      ctx.set('Warning', QUERY_KEY_WARNING);
      return query.trim();
    },
    async resolve(key, ctx, identified): Promise<Principal | null> {
      // X-Client-Version as koa-client-version.ts kept it (short and plain), never the raw header.
      const facts = { ...requestFacts(ctx), ip: ctx.ip };
      const result = await deps.apiKeys.authenticate(key, facts, (match) => identified(principalOfKey(match)));
      if (!result.ok) {
        deps.logger.debug({ request_id: ctx.state.requestId, reason: result.reason }, 'api key refused');
        return null;
      }
      return principalOfKey(result);
    },
  };
}
