import { z } from 'zod';
import { SIGNING_ALGS } from '../domain/signing-algs.ts';
import { applicationTypes, jwksSchema, jwksUriSchema, notReservedClientId, RESERVED_CLIENT_ID_MESSAGE } from '../domain/client-registration.ts';

const seconds = (def: number) => z.coerce.number().int().positive().default(def);
const flag = z.preprocess((v) => (typeof v === 'string' ? ['1', 'true', 'yes', 'on'].includes(v.toLowerCase()) : v), z.boolean());
const bool = (def: boolean) => flag.default(def);
const csv = z.preprocess((v) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : v), z.array(z.string()));
const httpUrl = z.string().url().refine((u) => /^https?:\/\//.test(u), 'must be an http(s) URL');

/** A JSON value given as text in an environment variable (left as is when it does not parse, so the schema names the problem). */
const jsonText = <T extends z.ZodType>(schema: T) =>
  z.preprocess((v) => {
    if (typeof v !== 'string') return v;
    try {
      return JSON.parse(v);
    } catch {
      return v;
    }
  }, schema);

/** An exception to the default rate limits for one client or for callers holding one scope. */
export const rateLimitOverrideSchema = z.object({
  client: z.string().min(1).max(128).optional(),
  scope: z.string().min(1).max(64).optional(),
  perHour: z.number().int().min(1).max(10_000_000).optional(),
  burst: z.number().int().min(1).max(1_000_000).optional(),
}).strict().refine((o) => (o.client === undefined) !== (o.scope === undefined), 'name exactly one of client or scope');

/**
 * A client declared in the config file (RFC 7591 names; any other field is refused, so a
 * typo such as `scopes` cannot pass unnoticed). Its redirect URIs are checked at start by
 * the admin API's rules for its application_type (src/bootstrap.ts, metadataProblems).
 */
export const clientConfigSchema = z.strictObject({
  // The admin API's rule for ids is not applied here (a config file may name its clients as
  // it always has), but the reserved prefixes are: a client's subject must never look like a
  // user's, a service account's or a key's.
  client_id: z.string().min(1).refine(notReservedClientId, RESERVED_CLIENT_ID_MESSAGE),
  client_secret: z.string().min(16).optional(),
  client_name: z.string().optional(),
  // web (default) or native (RFC 8252: loopback redirects on any port, private-use URI schemes).
  application_type: z.enum(applicationTypes).default('web'),
  redirect_uris: z.array(z.string()).default([]),
  post_logout_redirect_uris: z.array(z.string()).optional(),
  grant_types: z.array(z.string()).default(['authorization_code', 'refresh_token']),
  response_types: z.array(z.string()).optional(),
  token_endpoint_auth_method: z.enum(['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt']).default('client_secret_basic'),
  scope: z.string().optional(),
  // private_key_jwt: the client's public keys, inline or by URL (RFC 7591 §2).
  jwks: jwksSchema.optional(),
  jwks_uri: jwksUriSchema.optional(),
  id_token_signed_response_alg: z.enum(SIGNING_ALGS).optional(),
});
export type ClientConfig = z.infer<typeof clientConfigSchema>;

/**
 * Every setting, its environment variable and its default. The README's configuration
 * table mirrors this list; keep them in step.
 */
export const settings = {
  port: { env: 'PORT', schema: z.coerce.number().int().min(0).max(65535).default(3000), doc: 'listen port' },
  host: { env: 'HOST', schema: z.string().default('0.0.0.0'), doc: 'listen address' },
  tlsCertFile: { env: 'TLS_CERT_FILE', schema: z.string().min(1).optional(), doc: 'PEM certificate (chain) file; with TLS_KEY_FILE the server listens on HTTPS itself instead of HTTP' },
  tlsKeyFile: { env: 'TLS_KEY_FILE', schema: z.string().min(1).optional(), doc: 'PEM private key file of TLS_CERT_FILE' },
  publicUrl: { env: 'PUBLIC_URL', schema: httpUrl.default('http://localhost:3000').transform((u) => u.replace(/\/+$/, '')), doc: 'issuer and base of every URL the server prints' },
  redisUrl: { env: 'REDIS_URL', schema: z.string().regex(/^rediss?:\/\//, 'must start with redis:// or rediss://').optional(), doc: 'use the Redis store; unset means the in-memory store' },
  redisCluster: { env: 'REDIS_CLUSTER', schema: bool(false), doc: 'REDIS_URL names one node of a Redis Cluster' },
  redisSentinelName: { env: 'REDIS_SENTINEL_NAME', schema: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/).optional(), doc: 'Sentinel mode: the monitored master\'s name; REDIS_URL then names one sentinel (its password and database apply to the master)' },
  redisSentinels: { env: 'REDIS_SENTINELS', schema: csv.pipe(z.array(z.string().regex(/^[^\s:]+:\d{1,5}$/, 'each entry is host:port'))).default([]), doc: 'Sentinel mode: more sentinels, comma-separated host:port' },
  redisPrefix: { env: 'REDIS_PREFIX', schema: z.string().regex(/^[A-Za-z0-9:_-]{0,32}$/).default('nsa:'), doc: 'prefix of every Redis key' },
  adminEmail: { env: 'ADMIN_EMAIL', schema: z.string().email().default('admin@example.com'), doc: 'bootstrap admin email (created once when no admin exists)' },
  adminPassword: { env: 'ADMIN_PASSWORD', schema: z.string().min(12, 'must be at least 12 characters').optional(), doc: 'bootstrap admin password; unset: one is generated and printed once' },
  secretKey: { env: 'SECRET_KEY', schema: z.string().min(32, 'must be at least 32 characters').optional(), doc: 'root secret for cookie keys, keyed hashes and encryption at rest; unset: generated once and kept in the store' },
  corsOrigins: { env: 'CORS_ORIGINS', schema: csv.default([]), doc: 'comma-separated allow-list of browser origins' },
  serviceAccountAudiences: { env: 'SERVICE_ACCOUNT_AUDIENCES', schema: csv.default([]), doc: 'extra accepted aud values for service-account assertions' },
  apiKeyEnv: { env: 'API_KEY_ENV', schema: z.string().regex(/^[a-z0-9]{1,16}$/, 'lowercase letters and digits, 1-16').default('live'), doc: 'the <env> part of new API keys' },
  trustProxy: { env: 'TRUST_PROXY', schema: bool(false), doc: 'honour X-Forwarded-* from the proxy in front' },
  trustProxyHops: { env: 'TRUST_PROXY_HOPS', schema: z.coerce.number().int().min(1).max(10).default(1), doc: 'with TRUST_PROXY: how many proxies in front append to X-Forwarded-For; the client IP is the entry that many from the right (entries a client wrote itself are ignored)' },
  forceHttps: { env: 'FORCE_HTTPS', schema: bool(false), doc: 'refuse plain-HTTP API and OAuth calls (403) and redirect plain-HTTP page GETs to https on the PUBLIC_URL host; /healthz, /readyz and /metrics stay reachable' },
  minClientVersion: { env: 'MIN_CLIENT_VERSION', schema: z.string().regex(/^v?\d{1,9}(\.\d{1,9}){0,2}(-[0-9A-Za-z.-]+)?$/, 'must be a version like 1.2.0').optional(), doc: 'refuse callers whose X-Client-Version is older (426 UPGRADE_REQUIRED); callers that send no version are served' },
  logBufferMs: { env: 'LOG_BUFFER_MS', schema: z.coerce.number().int().min(0).max(10_000).default(250), doc: 'log lines are gathered and written at most this many ms later (one write for many lines); written out on exit, so only a process killed outright (SIGKILL, OOM) loses the last ones; 0 writes each line at once' },
  logLevel: { env: 'LOG_LEVEL', schema: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'), doc: 'pino log level' },
  apiAudience: { env: 'API_AUDIENCE', schema: httpUrl.optional(), doc: 'aud of access tokens (the API they are for); default PUBLIC_URL' },
  accessTokenAlg: { env: 'ACCESS_TOKEN_ALG', schema: z.enum(SIGNING_ALGS).default('ES256'), doc: 'JWS algorithm of access tokens' },
  tokenFastPath: { env: 'TOKEN_FAST_PATH', schema: bool(true), doc: 'answer the two busiest back-channel calls, a client_credentials token request and the introspection of a JWT access token by a client using HTTP Basic, without the provider\'s generic pipeline (same answer, about half the CPU); every other request, and every failure, still goes through the provider' },
  verifyFastPath: { env: 'VERIFY_FAST_PATH', schema: bool(true), doc: 'answer the gateway check\'s common case (GET /v1/auth/verify with a valid credential holding the required scopes, no Origin or X-Client-Version, its rate-limit lease in memory) before the generic middleware (same answer, log line and metrics); every other request, and every refusal, takes the full path' },
  credentialCache: { env: 'CREDENTIAL_CACHE', schema: bool(true), doc: 'on the Redis store, answer repeated credential checks (a JWT\'s deny-list entry and grant, an API key\'s record and owner, a service account\'s record) from memory, kept fresh by Redis keyspace notifications (turned on with CONFIG SET when off; a revocation reaches every instance within milliseconds, and an instance that stops hearing its own beat key\'s notifications reads Redis again within 2.5 s); off: every check reads Redis' },
  accessTokenTtl: { env: 'ACCESS_TOKEN_TTL', schema: seconds(900), doc: 'access token lifetime, seconds' },
  refreshTokenTtl: { env: 'REFRESH_TOKEN_TTL', schema: seconds(7 * 24 * 3600), doc: 'refresh token lifetime, seconds' },
  idTokenTtl: { env: 'ID_TOKEN_TTL', schema: seconds(3600), doc: 'ID token lifetime, seconds' },
  authorizationCodeTtl: { env: 'AUTHORIZATION_CODE_TTL', schema: seconds(60), doc: 'authorization code lifetime, seconds' },
  serviceAccountTokenTtl: { env: 'SERVICE_ACCOUNT_TOKEN_TTL', schema: seconds(3600), doc: 'service-account access token lifetime, seconds' },
  serviceAccountClockSkewSeconds: { env: 'SERVICE_ACCOUNT_CLOCK_SKEW_SECONDS', schema: z.coerce.number().int().min(0).max(300).default(60), doc: 'leeway for the exp, nbf and iat of service-account assertions, seconds' },
  serviceAccountRequireJti: { env: 'SERVICE_ACCOUNT_REQUIRE_JTI', schema: bool(false), doc: 'refuse service-account assertions without a jti (every assertion then single use)' },
  sessionTtl: { env: 'SESSION_TTL', schema: seconds(14 * 24 * 3600), doc: 'browser session lifetime at the authorization server, seconds (a session nobody has signed in to, made by a visit to the device-code or logout page: 15 minutes)' },
  keyRefreshSeconds: { env: 'KEY_REFRESH_SECONDS', schema: seconds(30), doc: 'how often an instance looks for rotated signing keys' },
  demoClient: { env: 'DEMO_CLIENT', schema: flag.optional(), doc: 'register the demo client at start-up (it may ask for every scope, admin ones included, and its secret is printed once: for trying the server out); unset: on with the in-memory store, off with REDIS_URL; off also removes a demo client an earlier start registered' },
  argon2MemoryKiB: { env: 'ARGON2_MEMORY_KIB', schema: z.coerce.number().int().min(8192).default(19456), doc: 'argon2id memory cost (OWASP: 19456)' },
  argon2TimeCost: { env: 'ARGON2_TIME_COST', schema: z.coerce.number().int().min(1).default(2), doc: 'argon2id iterations (OWASP: 2)' },
  argon2Concurrency: { env: 'ARGON2_CONCURRENCY', schema: z.coerce.number().int().min(1).max(64).default(3), doc: 'argon2id hashes run at once (the rest wait their turn): keep it below UV_THREADPOOL_SIZE (libuv default 4), so RS256/PS256 token signing always finds a free thread' },
  rateLimitPerHour: { env: 'RATE_LIMIT_PER_HOUR', schema: z.coerce.number().int().positive().default(1000), doc: 'requests per credential (or per IP when anonymous) per hour; runtime setting rateLimits.perHour' },
  rateLimitBurst: { env: 'RATE_LIMIT_BURST', schema: z.coerce.number().int().positive().default(100), doc: 'requests allowed within the burst window; runtime setting rateLimits.burst' },
  rateLimitBurstSeconds: { env: 'RATE_LIMIT_BURST_SECONDS', schema: seconds(10), doc: 'burst window, seconds; runtime setting rateLimits.burstSeconds' },
  rateLimitOverrides: { env: 'RATE_LIMIT_OVERRIDES', schema: jsonText(z.array(rateLimitOverrideSchema).max(100)).default([]), doc: 'JSON list of exceptions, e.g. [{"client":"etl","perHour":20000},{"scope":"admin.users","burst":20}]: the first rule naming the caller\'s client wins, then the first naming a scope it holds; runtime setting rateLimits.overrides' },
  rateLimitFailOpen: { env: 'RATE_LIMIT_FAIL_OPEN', schema: bool(true), doc: 'when the counter store cannot be reached: true keeps serving with per-instance in-memory counters (logged), false answers 503' },
  lockoutMaxFailures: { env: 'LOCKOUT_MAX_FAILURES', schema: z.coerce.number().int().positive().default(5), doc: 'failed logins of one account within the window before it locks; runtime setting lockout.maxFailures' },
  lockoutIpMaxFailures: { env: 'LOCKOUT_IP_MAX_FAILURES', schema: z.coerce.number().int().positive().default(50), doc: 'failed logins from one IP within the window before it is locked out; runtime setting lockout.ipMaxFailures' },
  lockoutWindowSeconds: { env: 'LOCKOUT_WINDOW_SECONDS', schema: seconds(900), doc: 'window in which failed logins are counted, seconds; runtime setting lockout.windowSeconds' },
  lockoutSeconds: { env: 'LOCKOUT_SECONDS', schema: seconds(900), doc: 'how long a lock lasts, seconds; runtime setting lockout.lockSeconds' },
  lockoutDelayAfter: { env: 'LOCKOUT_DELAY_AFTER', schema: z.coerce.number().int().min(0).default(2), doc: 'failed logins of one account within the window answered without delay; runtime setting lockout.delayAfter' },
  lockoutDelaySeconds: { env: 'LOCKOUT_DELAY_SECONDS', schema: z.coerce.number().int().min(0).default(1), doc: 'wait imposed after the first delayed failure, seconds, doubling with each further failure until the lock (0: no delays); runtime setting lockout.delaySeconds' },
  apiKeyMaxLifetimeDays: { env: 'API_KEY_MAX_LIFETIME_DAYS', schema: z.coerce.number().int().positive().default(90), doc: 'longest lifetime of a new API key, days; runtime setting apiKeys.maxLifetimeDays' },
  apiKeyRotationGraceSeconds: { env: 'API_KEY_ROTATION_GRACE_SECONDS', schema: z.coerce.number().int().min(0).default(86400), doc: 'how long a rotated API key keeps working, seconds; runtime setting apiKeys.rotationGraceSeconds' },
  apiKeyQueryParam: { env: 'API_KEY_QUERY_PARAM', schema: bool(true), doc: 'accept ?api_key= (not recommended); runtime setting apiKeys.allowQueryParam' },
  settingsRefreshSeconds: { env: 'SETTINGS_REFRESH_SECONDS', schema: seconds(3), doc: 'how often an instance re-reads the runtime settings (/v1/admin/settings) from the store' },
  inviteTtl: { env: 'INVITE_TTL', schema: seconds(7 * 24 * 3600), doc: 'lifetime of a user invitation or admin password-reset link, seconds' },
  metricsToken: { env: 'METRICS_TOKEN', schema: z.string().min(16, 'must be at least 16 characters').optional(), doc: 'bearer token GET /metrics requires; unset: /metrics is open (keep it off the public ingress)' },
  shutdownTimeout: { env: 'SHUTDOWN_TIMEOUT', schema: seconds(10), doc: 'on SIGTERM, how long in-flight requests may run before the process exits anyway, seconds' },
  requestTimeout: { env: 'REQUEST_TIMEOUT', schema: seconds(30), doc: 'how long a client may take to send a whole request (its headers: at most 10 s), seconds; a slower one (slow-loris) is answered 408 and disconnected' },
  auditMaxEntries: { env: 'AUDIT_MAX_ENTRIES', schema: z.coerce.number().int().min(1000).default(100_000), doc: 'audit events kept in the store (oldest dropped first)' },
  clients: { env: undefined, schema: z.array(clientConfigSchema).default([]), doc: 'OAuth clients declared in the config file' },
} as const;

type Settings = typeof settings;
type ParsedSettings = { [K in keyof Settings]: z.output<Settings[K]['schema']> };
/** The settings as the server uses them: parseConfig decides what an unset DEMO_CLIENT means. */
export type Config = Omit<ParsedSettings, 'demoClient'> & { demoClient: boolean };

export const configSchema = z.object(
  Object.fromEntries(Object.entries(settings).map(([k, v]) => [k, v.schema])) as { [K in keyof Settings]: Settings[K]['schema'] },
).strict();
