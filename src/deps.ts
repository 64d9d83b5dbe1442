import type { Clock } from './clock.ts';
import type { Config } from './config/schema.ts';
import type { Logger } from './logger.ts';
import type { Store } from './store/store.ts';
import { loadServerSecrets, type ServerSecrets } from './domain/secrets.ts';
import { createPasswordHasher, type PasswordHasher } from './domain/passwords.ts';
import { createUserRepository, type UserRepository } from './domain/users.ts';
import { createClientRepository, type ClientRepository } from './domain/clients.ts';
import { createSigningKeyStore, type SigningKeyStore } from './domain/signing-keys.ts';
import { loadScopeCatalog, type ScopeCatalog } from './domain/scopes.ts';
import { createKeyRing, type KeyRing } from './oidc/key-ring.ts';
import { createAccessTokenService, type AccessTokenService } from './oidc/access-tokens.ts';
import { createAuditLog, type AuditLog } from './domain/audit.ts';
import { createMetrics, withAuditMetrics, type Metrics } from './metrics.ts';
import { createRateLimiter, type RateLimiter } from './http/rate-limiter.ts';
import { createServiceAccountRepository, type ServiceAccountRepository } from './domain/service-accounts.ts';
import { createAccountSessions } from './oidc/account-sessions.ts';
import { createRuntimeSettings, type RuntimeSettings, type RuntimePolicy } from './domain/runtime-settings.ts';
import { createApiKeyService, type ApiKeyService } from './domain/api-keys.ts';
import { createLockout, type Lockout } from './domain/lockout.ts';
import { createTotp } from './domain/totp.ts';
import { createRecoveryCodes } from './domain/recovery-codes.ts';
import { createMfaService, type MfaService } from './domain/mfa.ts';
import { createLoginService, type LoginService } from './domain/login.ts';
import { apiAudienceOf } from './config/load.ts';
import { createDpopProofs, type DpopProofs } from './domain/dpop-proof.ts';
import { oidcKey } from './oidc/adapter.ts';
import { createCachedReads, type CachedReads } from './store/cached-reads.ts';
import { ACCESS_TOKEN_LIVENESS_PREFIXES } from './oidc/access-tokens.ts';
import { API_KEY_RECORD_PREFIX } from './domain/api-key-records.ts';
import { USER_RECORD_PREFIX } from './domain/users.ts';
import { SERVICE_ACCOUNT_RECORD_PREFIX } from './domain/service-accounts.ts';
import { performance } from 'node:perf_hooks';

/** Everything a module may need, built once in main.ts (or by a test) and passed down. */
export interface Deps {
  config: Config;
  clock: Clock;
  logger: Logger;
  store: Store;
  /** The store's reads of credential liveness (deny-list, grants, API keys, users), answered from memory while no change can be missed. */
  cachedReads: CachedReads;
  secrets: ServerSecrets;
  passwords: PasswordHasher;
  users: UserRepository;
  clients: ClientRepository;
  signingKeys: SigningKeyStore;
  keyRing: KeyRing;
  accessTokens: AccessTokenService;
  scopeCatalog: ScopeCatalog;
  audit: AuditLog;
  /** Prometheus metrics on this server's own registry (GET /metrics). */
  metrics: Metrics;
  /** Request counters (hourly quota + burst) shared through the store by every instance. */
  rateLimiter: RateLimiter;
  /** Service-account records (JWT-bearer grant); management rules live in admin services (`serviceAccounts`). */
  serviceAccounts: ServiceAccountRepository;
  /** Runtime policy (token lifetimes, rate limits, lockout, API keys, CORS): `settings.current()`. */
  settings: RuntimeSettings;
  /** API keys: issue, list, rotate, revoke (`revokeAllForUser` too), authenticate. */
  apiKeys: ApiKeyService;
  /** Failed-login counting, growing delays and locks, per account and per IP (API and pages alike). */
  lockout: Lockout;
  /** TOTP enrolment and second-factor checks (secrets sealed, recovery codes argon2id). */
  mfa: MfaService;
  /** Password (+ second factor) sign-in shared by /v1/auth/login and the sign-in pages. */
  login: LoginService;
  /** DPoP proofs (RFC 9449) with DPoP-bound access tokens at our resource endpoints (/v1, /oauth/userinfo). */
  dpop: DpopProofs;
}

export async function buildDeps(base: { config: Config; clock: Clock; logger: Logger; store: Store }): Promise<Deps> {
  const { config, clock, logger, store } = base;
  await store.connect();
  const secrets = await loadServerSecrets(store, config.secretKey);
  const passwords = createPasswordHasher({ memoryKiB: config.argon2MemoryKiB, timeCost: config.argon2TimeCost, concurrency: config.argon2Concurrency });
  const signingKeys = createSigningKeyStore({ store, secrets, clock });
  const keyRing = createKeyRing({ keys: signingKeys, logger, refreshSeconds: config.keyRefreshSeconds, now: () => clock.now() });
  await keyRing.refresh();
  const settings = createRuntimeSettings({ store, clock, logger, config, refreshMs: config.settingsRefreshSeconds * 1000 });
  await settings.refresh();
  const cachedReads = createCachedReads({
    store,
    prefixes: [...ACCESS_TOKEN_LIVENESS_PREFIXES, API_KEY_RECORD_PREFIX, USER_RECORD_PREFIX, SERVICE_ACCOUNT_RECORD_PREFIX],
    now: () => performance.now(),
    logger,
    enabled: config.credentialCache,
  });
  await cachedReads.start();
  const users = createUserRepository({ store, clock, passwords, cachedReads });
  const metrics = createMetrics();
  const audit = withAuditMetrics(createAuditLog({ store, clock, logger, maxEntries: config.auditMaxEntries }), metrics);
  const lockout = createLockout({ store, clock, secrets, audit, policy: () => settings.current().lockout });
  const mfa = createMfaService({
    store, users, secrets, audit,
    totp: createTotp({ store, clock }),
    recoveryCodes: createRecoveryCodes({ store, passwords, secrets }),
  });
  const clients = createClientRepository({ store, secrets });
  const accessTokens = createAccessTokenService({ keyRing, store, cachedReads, clock, issuer: config.publicUrl, audience: apiAudienceOf(config), clients });
  return {
    ...base,
    cachedReads,
    secrets,
    passwords,
    users,
    clients,
    signingKeys,
    keyRing,
    accessTokens,
    scopeCatalog: loadScopeCatalog(),
    serviceAccounts: createServiceAccountRepository({
      store,
      cachedReads,
      revokeTokens: async (accountId) => { await createAccountSessions({ store }).revokeAll(accountId); },
    }),
    audit,
    metrics,
    rateLimiter: createRateLimiter({ store, clock, logger, metrics, failOpen: config.rateLimitFailOpen }),
    settings,
    apiKeys: createApiKeyService({
      store, cachedReads, clock, secrets, users, audit, logger,
      environment: config.apiKeyEnv,
      policy: () => {
        const { maxLifetimeDays, rotationGraceSeconds } = settings.current().apiKeys;
        return { maxLifetimeMs: maxLifetimeDays * 86_400_000, rotationGraceMs: rotationGraceSeconds * 1000 };
      },
    }),
    lockout,
    mfa,
    login: createLoginService({ users, lockout, mfa, audit }),
    dpop: createDpopProofs({ store, clock, accessTokens, replayKey: (id) => oidcKey('ReplayDetection', id) }),
  };
}

/**
 * The longest a token signed by a key can live: how long a rotated-out key must stay
 * published. With the runtime policy, lifetimes changed at runtime count too.
 */
export const longestTokenLifetimeMs = (config: Config, policy?: RuntimePolicy): number =>
  Math.max(
    config.accessTokenTtl, config.idTokenTtl, config.serviceAccountTokenTtl,
    policy?.tokens.accessTokenTtl ?? 0, policy?.tokens.idTokenTtl ?? 0, policy?.tokens.serviceAccountTokenTtl ?? 0,
  ) * 1000 + 60_000;
