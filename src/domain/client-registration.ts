import { z } from 'zod';
import { parseScope, SCOPE_SYNTAX } from './scopes.ts';
import { SIGNING_ALGS } from './signing-algs.ts';

/**
 * The rules for OAuth clients an admin registers (RFC 7591 names). The provider's own
 * metadata validation runs after these (see src/oidc/client-validator.ts).
 */

/** Prefixes that name other kinds of subject: a client must not look like a user, service account or key. */
export const RESERVED_CLIENT_ID_PREFIXES = ['usr_', 'sa_', 'key_'] as const;

export const clientIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$/, '3 to 64 characters: letters, digits, dot, underscore or hyphen, starting with a letter or digit')
  .refine((id) => !RESERVED_CLIENT_ID_PREFIXES.some((p) => id.toLowerCase().startsWith(p)), `must not start with ${RESERVED_CLIENT_ID_PREFIXES.join(', ')}`);

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * Why a redirect URI is refused, or null when it is fine: absolute, no fragment
 * (RFC 6749 §3.1.2), no wildcard, no credentials, https unless it is a loopback address
 * (RFC 8252 §7.3 lets native apps listen on loopback over http).
 */
export function redirectUriProblem(value: string): string | null {
  if (value.length > 2000) return 'is too long';
  if (value.includes('*')) return 'must not contain wildcards';
  if (value.includes('#')) return 'must not contain a fragment';
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return 'must be an absolute URL';
  }
  if (url.username || url.password) return 'must not contain credentials';
  if (url.protocol === 'https:') return null;
  if (url.protocol === 'http:') return LOOPBACK_HOSTS.has(url.hostname) ? null : 'must use https (http is allowed only for localhost and loopback addresses)';
  return 'must use https';
}

const redirectUri = z.string().superRefine((value, ctx) => {
  const problem = redirectUriProblem(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

export const supportedGrantTypes = [
  'authorization_code',
  'refresh_token',
  'client_credentials',
  'urn:ietf:params:oauth:grant-type:device_code',
  'urn:ietf:params:oauth:grant-type:jwt-bearer',
] as const;

export const authMethods = ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'] as const;

/** Auth methods that use a shared secret (which we generate and show once). */
export const needsSecret = (method: string): boolean => method === 'client_secret_basic' || method === 'client_secret_post';

const printable = (max: number) => z.string().trim().min(1).max(max).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

export const jwksSchema = z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1).max(10) });
export const jwksUriSchema = z.string().url().refine((u) => u.startsWith('https://'), 'must use https');

/** Fields an admin may set (create) or change (patch). */
const clientFields = {
  client_name: printable(100),
  redirect_uris: z.array(redirectUri).max(20),
  post_logout_redirect_uris: z.array(redirectUri).max(20),
  grant_types: z.array(z.enum(supportedGrantTypes)).min(1).max(supportedGrantTypes.length),
  response_types: z.array(z.literal('code')).max(1),
  token_endpoint_auth_method: z.enum(authMethods),
  scope: z.string().max(2000).regex(SCOPE_SYNTAX, 'space-separated scope names'),
  jwks_uri: jwksUriSchema,
  jwks: jwksSchema,
  id_token_signed_response_alg: z.enum(SIGNING_ALGS),
};

export const createClientSchema = z.object({
  client_id: clientIdSchema.optional().describe('chosen id; generated when absent'),
  client_name: clientFields.client_name,
  redirect_uris: clientFields.redirect_uris.default([]),
  post_logout_redirect_uris: clientFields.post_logout_redirect_uris.optional(),
  grant_types: clientFields.grant_types.default(['authorization_code', 'refresh_token']),
  response_types: clientFields.response_types.optional().describe('default: ["code"] with authorization_code, else []'),
  token_endpoint_auth_method: clientFields.token_endpoint_auth_method.default('client_secret_basic'),
  scope: clientFields.scope.optional().describe('scopes the client may request; default: openid'),
  jwks_uri: clientFields.jwks_uri.optional(),
  jwks: clientFields.jwks.optional(),
  id_token_signed_response_alg: clientFields.id_token_signed_response_alg.optional().describe('JWS algorithm of its ID tokens; default RS256 (OpenID Connect Core)'),
}).strict();

export const updateClientSchema = z.object({
  client_name: clientFields.client_name.optional(),
  redirect_uris: clientFields.redirect_uris.optional(),
  post_logout_redirect_uris: clientFields.post_logout_redirect_uris.optional(),
  grant_types: clientFields.grant_types.optional(),
  response_types: clientFields.response_types.optional(),
  token_endpoint_auth_method: clientFields.token_endpoint_auth_method.optional(),
  scope: clientFields.scope.optional(),
  jwks_uri: clientFields.jwks_uri.nullable().optional(),
  jwks: clientFields.jwks.nullable().optional(),
  id_token_signed_response_alg: clientFields.id_token_signed_response_alg.nullable().optional().describe('null: back to the default, RS256'),
}).strict().refine((v) => Object.keys(v).length > 0, 'nothing to change');

export type CreateClientInput = z.output<typeof createClientSchema>;
export type UpdateClientInput = z.output<typeof updateClientSchema>;

/** Response types when none are given: `code` for a code-flow client, none otherwise (a machine client has no redirect). */
export const defaultResponseTypes = (grantTypes: readonly string[] | undefined): string[] => (grantTypes?.includes('authorization_code') ? ['code'] : []);

/**
 * Rules across fields the provider does not enforce: a public client (no authentication)
 * must not get a grant that stands on client authentication alone.
 */
export function metadataProblems(metadata: { grant_types?: string[]; token_endpoint_auth_method?: string }): { field: string; message: string }[] {
  if (metadata.token_endpoint_auth_method === 'none' && metadata.grant_types?.includes('client_credentials')) {
    return [{ field: 'grant_types', message: 'client_credentials needs an authenticated client (token_endpoint_auth_method other than none)' }];
  }
  return [];
}

/** Scope names of a client's `scope` that the catalog does not know. */
export const unknownScopes = (scope: string | undefined, catalog: Readonly<Record<string, string>>): string[] =>
  parseScope(scope).filter((s) => !(s in catalog));
