import { soundRsaJwk } from './service-account-keys.ts';
import { z } from 'zod';
import { parseScope, SCOPE_SYNTAX } from './scopes.ts';
import { SIGNING_ALGS } from './signing-algs.ts';

/**
 * The rules for OAuth clients an admin registers (RFC 7591 names). The provider's own
 * metadata validation runs after these (see src/oidc/client-validator.ts).
 */

/** Prefixes that name other kinds of subject: a client must not look like a user, service account or key. */
export const RESERVED_CLIENT_ID_PREFIXES = ['usr_', 'sa_', 'key_'] as const;

/** Whether an id is free of the reserved prefixes (any case): a client's token would otherwise speak for a user, account or key. */
export const notReservedClientId = (id: string): boolean => !RESERVED_CLIENT_ID_PREFIXES.some((p) => id.toLowerCase().startsWith(p));
export const RESERVED_CLIENT_ID_MESSAGE = `must not start with ${RESERVED_CLIENT_ID_PREFIXES.join(', ')}`;

export const clientIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$/, '3 to 64 characters: letters, digits, dot, underscore or hyphen, starting with a letter or digit')
  .refine(notReservedClientId, RESERVED_CLIENT_ID_MESSAGE);

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]']);

/**
 * RFC 7591 `application_type`. A `native` client (CLI, desktop or mobile app) may use a
 * loopback redirect on any port (RFC 8252 §7.3: oidc-provider compares loopback http
 * redirect URIs without their port for native clients only) and a private-use URI scheme
 * (RFC 8252 §7.1); a `web` client (the default) neither.
 */
export const applicationTypes = ['web', 'native'] as const;
export type ApplicationType = (typeof applicationTypes)[number];

/** Schemes no redirect may use, whatever the client type (oidc-provider refuses the same ones). */
const FORBIDDEN_SCHEMES = new Set(['javascript:', 'vbscript:', 'data:', 'blob:', 'file:', 'about:']);
/** A private-use scheme in reverse domain-name form (RFC 8252 §7.1, RFC 7595 §3.8): com.example.app */
const REVERSE_DOMAIN_SCHEME = /^[a-z][a-z0-9-]*(\.[a-z0-9-]+)+:$/;

const HTTP_ONLY_LOOPBACK = 'must use https (http is allowed only for localhost and loopback addresses)';

/** Problems any redirect URI has whatever the client type, and the parsed URL when it has none. */
function uriFormProblem(value: string): { problem: string } | { url: URL } {
  if (value.length > 2000) return { problem: 'is too long' };
  if (value.includes('*')) return { problem: 'must not contain wildcards' };
  if (value.includes('#')) return { problem: 'must not contain a fragment' };
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return { problem: 'must be an absolute URL' };
  }
  if (url.username || url.password) return { problem: 'must not contain credentials' };
  return { url };
}

/**
 * Why a redirect URI is refused for a client of this application_type, or null when it
 * is fine. Always: absolute, no fragment (RFC 6749 §3.1.2), no wildcard, no credentials,
 * and plain http only on a loopback host (`localhost`, `127.0.0.1`, `[::1]`; RFC 8252
 * §8.3 recommends the IP literals, `localhost` is accepted for compatibility).
 * web: otherwise https. native (RFC 8252 §7): https on a real host name (a claimed
 * https URI; not on loopback, which oidc-provider refuses for native clients), or a
 * private-use scheme in reverse domain-name form such as `com.example.app:/callback`.
 */
export function redirectUriProblem(value: string, applicationType: ApplicationType = 'web'): string | null {
  const form = uriFormProblem(value);
  if ('problem' in form) return form.problem;
  const { url } = form;
  const loopback = LOOPBACK_HOSTS.has(url.hostname);
  if (url.protocol === 'http:') return loopback ? null : HTTP_ONLY_LOOPBACK;
  if (url.protocol === 'https:') {
    return applicationType === 'native' && loopback ? 'must use http on a loopback address (a native client may not use https on localhost or loopback)' : null;
  }
  const privateUse = REVERSE_DOMAIN_SCHEME.test(url.protocol) && !FORBIDDEN_SCHEMES.has(url.protocol);
  if (applicationType === 'native') {
    return privateUse ? null : 'must use https, http on a loopback address, or a private-use URI scheme in reverse domain-name form such as com.example.app:/callback (RFC 8252 §7.1)';
  }
  return privateUse ? 'must use https (a private-use URI scheme such as com.example.app: needs application_type "native")' : 'must use https';
}

type RedirectMetadata = { application_type?: unknown; redirect_uris?: unknown; post_logout_redirect_uris?: unknown };

/** `formChecked`: leave out the problems the field schema (redirectUri) already reports. */
function redirectUriIssues(metadata: RedirectMetadata, formChecked = false): { field: 'redirect_uris' | 'post_logout_redirect_uris'; index: number; message: string }[] {
  const type: ApplicationType = metadata.application_type === 'native' ? 'native' : 'web';
  const issues: { field: 'redirect_uris' | 'post_logout_redirect_uris'; index: number; message: string }[] = [];
  for (const field of ['redirect_uris', 'post_logout_redirect_uris'] as const) {
    const uris = metadata[field];
    if (!Array.isArray(uris)) continue;
    uris.forEach((uri: unknown, index) => {
      if (formChecked && (typeof uri !== 'string' || 'problem' in uriFormProblem(uri))) return;
      const message = typeof uri === 'string' ? redirectUriProblem(uri, type) : 'must be a string';
      if (message) issues.push({ field, index, message });
    });
  }
  return issues;
}

/**
 * The redirect-URI problems of a whole client, judged by its application_type (absent:
 * web), with the field named as `redirect_uris.<index>`: the admin API and CLI (on the
 * merged metadata, so a PATCH of either the type or the URIs is judged with the other)
 * and the config file's clients at start.
 */
export const redirectUriProblems = (metadata: RedirectMetadata): { field: string; message: string }[] =>
  redirectUriIssues(metadata).map(({ field, index, message }) => ({ field: `${field}.${index}`, message }));

// The scheme and host rules depend on application_type, which a PATCH may leave out: the
// field checks only what no client type allows; the whole client is judged by
// redirectUriProblems (createClientSchema, and metadataProblems on the merged metadata).
const redirectUri = z.string().superRefine((value, ctx) => {
  const form = uriFormProblem(value);
  if ('problem' in form) ctx.addIssue({ code: 'custom', message: form.problem });
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
  application_type: z.enum(applicationTypes),
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
  application_type: clientFields.application_type.default('web').describe('native: a CLI, desktop or mobile app (RFC 8252): loopback http redirect URIs match on any port, private-use URI schemes (com.example.app:/callback) are allowed'),
}).strict().superRefine((input, ctx) => {
  for (const { field, index, message } of redirectUriIssues(input, true)) ctx.addIssue({ code: 'custom', path: [field, index], message });
});

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
  application_type: clientFields.application_type.nullable().optional().describe('null: back to the default, web; the redirect URIs (stored or given) must suit the new type'),
}).strict().refine((v) => Object.keys(v).length > 0, 'nothing to change');

export type CreateClientInput = z.output<typeof createClientSchema>;
export type UpdateClientInput = z.output<typeof updateClientSchema>;

/** Response types when none are given: `code` for a code-flow client, none otherwise (a machine client has no redirect). */
export const defaultResponseTypes = (grantTypes: readonly string[] | undefined): string[] => (grantTypes?.includes('authorization_code') ? ['code'] : []);

/**
 * Rules across fields the provider does not enforce: redirect URIs that suit the client's
 * application_type (stricter than the provider for web clients: https except on
 * loopback), and a public client (no authentication) must not get a grant that stands
 * on client authentication alone.
 */
export function metadataProblems(metadata: RedirectMetadata & { grant_types?: string[]; token_endpoint_auth_method?: string; jwks?: unknown }): { field: string; message: string }[] {
  const uriProblems = redirectUriProblems(metadata);
  if (uriProblems.length) return uriProblems;
  // A client's assertion key with a broken RSA exponent lets anyone sign as the client.
  const keys = (metadata.jwks as { keys?: unknown } | undefined)?.keys;
  if (Array.isArray(keys) && keys.some((k) => (k as { kty?: unknown })?.kty === 'RSA' && !soundRsaJwk(k as { e?: unknown; n?: unknown }))) {
    return [{ field: 'jwks', message: 'RSA keys must have an odd public exponent of at least 65537 and an odd modulus' }];
  }
  if (metadata.token_endpoint_auth_method === 'none' && metadata.grant_types?.includes('client_credentials')) {
    return [{ field: 'grant_types', message: 'client_credentials needs an authenticated client (token_endpoint_auth_method other than none)' }];
  }
  return [];
}

/** Scope names of a client's `scope` that the catalog does not know. */
export const unknownScopes = (scope: string | undefined, catalog: Readonly<Record<string, string>>): string[] =>
  parseScope(scope).filter((s) => !(s in catalog));
