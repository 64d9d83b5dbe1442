import type { Context } from 'koa';
import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { isValidEnvironment } from '../domain/api-key-format.ts';
import { ApiKeyError } from '../domain/api-keys.ts';
import type { RequestFacts } from '../domain/audit.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { MAX_ALLOW_LIST_ENTRIES, normaliseAllowListEntry } from '../domain/ip-allow-list.ts';
import { apiScopesOf } from '../domain/scopes.ts';
import { AppError, validationFailed } from '../errors/app-error.ts';
import { insufficientScope, invalidToken } from '../http/credentials.ts';
import { route, type RouteSpec, printable } from './route.ts';

const TAG = 'API keys';
// Control characters would make names unreadable in lists and logs.

const keyView = z.object({
  id: z.string(),
  name: z.string(),
  description: z.string(),
  prefix: z.string().describe('nsa_<env>_ and the first 4 random characters, to tell keys apart'),
  scopes: z.array(z.string()),
  allowedIps: z.array(z.string()),
  environment: z.string(),
  status: z.enum(['active', 'rotated', 'expired']),
  createdAt: z.string(),
  expiresAt: z.string().describe('when the key stops working (for a rotated key: the end of its grace period)'),
  lastUsedAt: z.string().nullable().describe('accurate to a minute'),
  lastUsedIp: z.string().nullable(),
  rotatedFrom: z.string().optional(),
  rotatedTo: z.string().optional(),
});
const createdKey = keyView.extend({ apiKey: z.string().describe('the key itself: shown only in this response') });

const keyIdParams = z.object({ id: z.string().regex(/^key_[A-Za-z0-9]{1,40}$/, 'not an API key id') });

export const facts = (ctx: Context): RequestFacts => ({
  ip: ctx.ip,
  requestId: ctx.state.requestId,
  clientVersion: ctx.get('x-client-version') || undefined,
});

/** Domain rule broken → the contract's error. */
function toAppError(err: unknown, realm: string): unknown {
  if (!(err instanceof ApiKeyError)) return err;
  switch (err.kind) {
    case 'scope_not_held': return insufficientScope(realm, err.scope ?? '');
    case 'lifetime_too_long': return validationFailed([{ field: 'expiresIn', message: `must be at most ${formatDuration(err.maxLifetimeMs ?? 0)}` }]);
    case 'invalid_allowed_ips': return validationFailed([{ field: 'allowedIps', message: 'must be IP addresses or CIDR ranges' }]);
    case 'name_taken': return new AppError('CONFLICT', { message: 'You already have an API key with this name' });
    case 'not_rotatable': return new AppError('CONFLICT', { message: err.message });
    case 'not_found': return new AppError('NOT_FOUND', { message: 'API key not found' });
    case 'owner_invalid': return invalidToken(realm);
  }
}

/**
 * /v1/auth/api-keys: a signed-in user manages their own keys. Only a user credential
 * may do so: an API key cannot mint, extend or rotate keys, so a leaked key stays
 * bounded by its own scopes and expiry.
 */
export function apiKeyRoutes(deps: Pick<Deps, 'apiKeys' | 'scopeCatalog' | 'config'>): RouteSpec[] {
  const realm = deps.config.publicUrl;
  const apiScopes = apiScopesOf(deps.scopeCatalog);
  const run = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      throw toAppError(err, realm);
    }
  };

  const createBody = z.object({
    name: printable(100).min(1, 'must not be empty'),
    description: printable(500).optional(),
    scopes: z.array(z.string().refine((s) => apiScopes.includes(s), 'unknown scope')).min(1).max(apiScopes.length),
    expiresIn: z.string().optional().transform((text, ctx) => {
      if (text === undefined) return undefined;
      const ms = parseDuration(text);
      if (ms === null) {
        ctx.addIssue({ code: 'custom', message: 'must be a whole number of days, hours or minutes: 90d, 12h, 30m' });
        return z.NEVER;
      }
      return ms;
    }).describe('90d, 12h or 30m; default and maximum: the policy maximum (90d)'),
    allowedIps: z.array(z.string().transform((entry, ctx) => {
      const result = normaliseAllowListEntry(entry);
      if (!result.ok) {
        ctx.addIssue({ code: 'custom', message: result.message });
        return z.NEVER;
      }
      return result.cidr;
    })).max(MAX_ALLOW_LIST_ENTRIES).optional().describe('IPv4/IPv6 addresses or CIDR ranges; empty or absent: any address'),
    environment: z.string().refine(isValidEnvironment, 'lowercase letters and digits, 1-16').optional()
      .describe(`the <env> of the key (default API_KEY_ENV); a server accepts only keys of its own API_KEY_ENV`),
  }).strict();

  return [
    route({
      method: 'post',
      path: '/auth/api-keys',
      summary: 'Create an API key (the key is shown only in this response)',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      body: createBody,
      responses: {
        201: { description: 'Created', schema: createdKey },
        403: { description: 'A requested scope is not held by the caller (nothing is created)' },
        409: { description: 'A key with this name exists' },
      },
      async handler(ctx, { body, principal }) {
        const { key, view } = await run(() => deps.apiKeys.create({
          ownerId: principal.subject,
          grantableScopes: principal.scopes,
          name: body.name,
          description: body.description,
          scopes: body.scopes,
          lifetimeMs: body.expiresIn,
          allowedIps: body.allowedIps ?? [],
          environment: body.environment,
        }, facts(ctx)));
        ctx.status = 201;
        ctx.body = { apiKey: key, ...view };
      },
    }),
    route({
      method: 'get',
      path: '/auth/api-keys',
      summary: "List the caller's API keys (metadata only, never a key)",
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      responses: { 200: { description: 'The keys', schema: z.object({ apiKeys: z.array(keyView) }) } },
      async handler(ctx, { principal }) {
        ctx.body = { apiKeys: await deps.apiKeys.list(principal.subject) };
      },
    }),
    route({
      method: 'delete',
      path: '/auth/api-keys/:id',
      summary: 'Revoke an API key at once',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      params: keyIdParams,
      responses: { 204: { description: 'Revoked' }, 404: { description: 'No such key of yours' } },
      async handler(ctx, { params, principal }) {
        await run(() => deps.apiKeys.revoke(principal.subject, params.id, facts(ctx)));
        ctx.status = 204;
      },
    }),
    route({
      method: 'post',
      path: '/auth/api-keys/:id/rotate',
      summary: 'Issue a successor; the old key keeps working for the grace period (24 h by default)',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      params: keyIdParams,
      responses: {
        201: { description: 'The successor (shown once) and the old key with its new end', schema: createdKey.extend({ previous: keyView }) },
        404: { description: 'No such key of yours' },
        409: { description: 'Already rotated, or expired' },
      },
      async handler(ctx, { params, principal }) {
        const { key, view, previous } = await run(() => deps.apiKeys.rotate(principal.subject, params.id, principal.scopes, facts(ctx)));
        ctx.status = 201;
        ctx.body = { apiKey: key, ...view, previous };
      },
    }),
  ];
}
