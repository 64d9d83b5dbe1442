import { z } from 'zod';
import type { Clock } from '../clock.ts';
import { rateLimitOverrideSchema, type Config } from '../config/schema.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import { upsertRecord } from '../store/update-record.ts';

const SETTINGS_KEY = 'settings:runtime';
const DAY = 24 * 3600;

const ttl = (max: number) => z.number().int().min(1).max(max);
const origin = z.string().refine((value) => {
  try {
    const url = new URL(value);
    return (url.protocol === 'https:' || url.protocol === 'http:') && url.origin === value;
  } catch {
    return false;
  }
}, 'must be an origin: scheme://host[:port], no path or trailing slash');

/**
 * The runtime policy: what an admin may change while the server runs
 * (`/v1/admin/settings`). The file config gives every default; stored overrides win.
 * Add a field here (and its default in `defaultPolicy`) to make a setting runtime-tunable.
 */
export const runtimePolicySchema = z.object({
  tokens: z.object({
    /** Seconds. */
    accessTokenTtl: ttl(DAY),
    refreshTokenTtl: ttl(365 * DAY),
    idTokenTtl: ttl(DAY),
    serviceAccountTokenTtl: ttl(DAY),
  }).strict(),
  rateLimits: z.object({
    /** Requests per credential (or per IP when anonymous) per hour. */
    perHour: z.number().int().min(1).max(10_000_000),
    /** Short-window burst allowance. */
    burst: z.number().int().min(1).max(1_000_000),
    burstSeconds: z.number().int().min(1).max(3600),
    /** Exceptions per client or per scope (first matching client rule, then first matching scope rule). */
    overrides: z.array(rateLimitOverrideSchema).max(100),
  }).strict(),
  lockout: z.object({
    /** Failed logins (password or TOTP) of one account within the window before it locks. */
    maxFailures: z.number().int().min(1).max(1000),
    /** Failed logins from one IP within the window before that IP is locked out. */
    ipMaxFailures: z.number().int().min(1).max(100_000),
    windowSeconds: z.number().int().min(1).max(DAY),
    lockSeconds: z.number().int().min(1).max(DAY),
    /** Failures of one account within the window answered without delay. */
    delayAfter: z.number().int().min(0).max(1000),
    /** Wait after the first delayed failure, doubling with each further one until the lock; 0: none. */
    delaySeconds: z.number().int().min(0).max(DAY),
  }).strict(),
  apiKeys: z.object({
    maxLifetimeDays: z.number().int().min(1).max(3650),
    /** How long a rotated key keeps working beside its successor. */
    rotationGraceSeconds: z.number().int().min(0).max(30 * DAY),
    /** Whether `?api_key=` is accepted (the header always is). */
    allowQueryParam: z.boolean(),
  }).strict(),
  /** Browser origins allowed by CORS. */
  corsOrigins: z.array(origin).max(100),
}).strict();

export type RuntimePolicy = z.infer<typeof runtimePolicySchema>;

/**
 * A change request: any subset of the groups and fields. `null` on a field (or on a
 * whole group, or on corsOrigins) removes the override so the file default applies again.
 */
const nullablePartial = <T extends z.ZodRawShape>(shape: z.ZodObject<T>) =>
  z.object(Object.fromEntries(Object.entries(shape.shape).map(([k, v]) => [k, (v as z.ZodType).nullable().optional()])) as unknown as {
    [K in keyof T]: z.ZodOptional<z.ZodNullable<T[K]>>;
  }).strict();

export const runtimePolicyPatchSchema = z.object({
  tokens: nullablePartial(runtimePolicySchema.shape.tokens).nullable().optional(),
  rateLimits: nullablePartial(runtimePolicySchema.shape.rateLimits).nullable().optional(),
  lockout: nullablePartial(runtimePolicySchema.shape.lockout).nullable().optional(),
  apiKeys: nullablePartial(runtimePolicySchema.shape.apiKeys).nullable().optional(),
  corsOrigins: runtimePolicySchema.shape.corsOrigins.nullable().optional(),
}).strict();

export type RuntimePolicyPatch = z.infer<typeof runtimePolicyPatchSchema>;

/** What is kept in the store: only the overridden fields, plus who changed them and when. */
interface StoredOverrides {
  version: number;
  overrides: Overrides;
  updatedAt: string;
  updatedBy: string;
}
type Overrides = { [G in keyof RuntimePolicy]?: RuntimePolicy[G] extends unknown[] ? RuntimePolicy[G] : Partial<RuntimePolicy[G]> };

/** The file config's values, as a policy. */
export function defaultPolicy(config: Config): RuntimePolicy {
  return {
    tokens: {
      accessTokenTtl: config.accessTokenTtl,
      refreshTokenTtl: config.refreshTokenTtl,
      idTokenTtl: config.idTokenTtl,
      serviceAccountTokenTtl: config.serviceAccountTokenTtl,
    },
    rateLimits: { perHour: config.rateLimitPerHour, burst: config.rateLimitBurst, burstSeconds: config.rateLimitBurstSeconds, overrides: config.rateLimitOverrides },
    lockout: {
      maxFailures: config.lockoutMaxFailures,
      ipMaxFailures: config.lockoutIpMaxFailures,
      windowSeconds: config.lockoutWindowSeconds,
      lockSeconds: config.lockoutSeconds,
      delayAfter: config.lockoutDelayAfter,
      delaySeconds: config.lockoutDelaySeconds,
    },
    apiKeys: {
      maxLifetimeDays: config.apiKeyMaxLifetimeDays,
      rotationGraceSeconds: config.apiKeyRotationGraceSeconds,
      allowQueryParam: config.apiKeyQueryParam,
    },
    corsOrigins: [...config.corsOrigins],
  };
}

function applyOverrides(defaults: RuntimePolicy, overrides: Overrides): RuntimePolicy {
  return {
    tokens: { ...defaults.tokens, ...overrides.tokens },
    rateLimits: { ...defaults.rateLimits, ...overrides.rateLimits },
    lockout: { ...defaults.lockout, ...overrides.lockout },
    apiKeys: { ...defaults.apiKeys, ...overrides.apiKeys },
    corsOrigins: overrides.corsOrigins ?? defaults.corsOrigins,
  };
}

function mergePatch(current: Overrides, patch: RuntimePolicyPatch): Overrides {
  const next: Overrides = structuredClone(current);
  for (const group of ['tokens', 'rateLimits', 'lockout', 'apiKeys'] as const) {
    const change = patch[group];
    if (change === undefined) continue;
    if (change === null) {
      delete next[group];
      continue;
    }
    const merged: Record<string, unknown> = { ...next[group] };
    for (const [field, value] of Object.entries(change)) {
      if (value === null) delete merged[field];
      else if (value !== undefined) merged[field] = value;
    }
    if (Object.keys(merged).length) (next as Record<string, unknown>)[group] = merged;
    else delete next[group];
  }
  if (patch.corsOrigins === null) delete next.corsOrigins;
  else if (patch.corsOrigins !== undefined) next.corsOrigins = patch.corsOrigins;
  return next;
}

export class InvalidPolicyError extends Error {
  readonly issues: { field: string; message: string }[];
  constructor(issues: { field: string; message: string }[]) {
    super('invalid runtime policy');
    this.issues = issues;
  }
}

/** Rules across fields that one field's schema cannot express. */
function checkConsistency(policy: RuntimePolicy): { field: string; message: string }[] {
  const problems: { field: string; message: string }[] = [];
  if (policy.tokens.refreshTokenTtl < policy.tokens.accessTokenTtl) {
    problems.push({ field: 'tokens.refreshTokenTtl', message: 'must be at least tokens.accessTokenTtl' });
  }
  return problems;
}

export interface SettingsSnapshot {
  /** The policy in force: file defaults with the stored overrides applied. */
  settings: RuntimePolicy;
  /** Only the overridden fields. */
  overrides: Overrides;
  version: number;
  updatedAt?: string;
  updatedBy?: string;
}

/** Where a change of the runtime settings is announced to every instance. */
const SETTINGS_CHANGED = 'settings-changed';

/**
 * The runtime policy shared by every instance on one store. `current()` is a synchronous
 * read of a cached copy. A change is announced on the store (pub/sub): every instance
 * reloads as the message arrives (milliseconds), and again whenever its subscription comes
 * back after a loss. Besides, a read older than `refreshMs` starts a background reload.
 */
export function createRuntimeSettings(deps: { store: Store; clock: Clock; logger: Logger; config: Config; refreshMs: number }) {
  const { store, clock, logger, config, refreshMs } = deps;
  const defaults = defaultPolicy(config);
  let snapshot: SettingsSnapshot = { settings: defaults, overrides: {}, version: 0 };
  let loadedAt = Number.NEGATIVE_INFINITY;
  let loading: Promise<SettingsSnapshot> | undefined;
  // A failed reload is tried again after refreshMs, like a successful one, and logged once
  // until a reload works: while the store is out of reach every request would start one.
  let failedAt = Number.NEGATIVE_INFINITY;
  let failing = false;
  const warnReloadFailed = (err: Error) => {
    failedAt = clock.now();
    if (failing) return;
    failing = true;
    logger.warn({ err: err.message }, 'runtime settings reload failed; keeping the last known values');
  };
  // A load already running may have read the store before the change: reload after it.
  const reloadAfterChange = () => {
    const running = loading;
    (running ? running.catch(() => undefined).then(() => refresh()) : refresh()).catch(warnReloadFailed);
  };
  store.subscribe(SETTINGS_CHANGED, reloadAfterChange, (live) => {
    if (live) reloadAfterChange();
  });

  function fromStored(stored: StoredOverrides | null): SettingsSnapshot {
    if (!stored) return { settings: defaults, overrides: {}, version: 0 };
    const settings = applyOverrides(defaults, stored.overrides);
    const parsed = runtimePolicySchema.safeParse(settings);
    if (!parsed.success) {
      // A stored value the current code no longer accepts: keep serving the defaults and say so.
      logger.error({ issues: parsed.error.issues.map((i) => i.path.join('.')) }, 'stored runtime settings are invalid; using the file defaults');
      return { settings: defaults, overrides: {}, version: stored.version };
    }
    return { settings: parsed.data, overrides: stored.overrides, version: stored.version, updatedAt: stored.updatedAt, updatedBy: stored.updatedBy };
  }

  async function readStored(): Promise<StoredOverrides | null> {
    const raw = await store.get(SETTINGS_KEY);
    return raw ? (JSON.parse(raw) as StoredOverrides) : null;
  }

  /** Reloads from the store now (one load at a time). */
  function refresh(): Promise<SettingsSnapshot> {
    loading ??= readStored()
      .then((stored) => {
        snapshot = fromStored(stored);
        loadedAt = clock.now();
        if (failing) logger.info('runtime settings reload works again');
        failing = false;
        return snapshot;
      })
      .finally(() => {
        loading = undefined;
      });
    return loading;
  }

  function current(): RuntimePolicy {
    if (clock.now() - Math.max(loadedAt, failedAt) >= refreshMs && !loading) {
      refresh().catch(warnReloadFailed);
    }
    return snapshot.settings;
  }

  /**
   * Applies a change and stores it. Validation covers the merged result, so a change that
   * would make the whole policy inconsistent is refused. Concurrent changes are both kept:
   * each is merged into what the other stored (update-record.ts).
   */
  async function update(patch: RuntimePolicyPatch, actor: string): Promise<{ before: SettingsSnapshot; after: SettingsSnapshot }> {
    let before!: SettingsSnapshot;
    const stored = await upsertRecord<StoredOverrides>(store, SETTINGS_KEY, (current) => {
      before = fromStored(current);
      const overrides = mergePatch(before.overrides, patch);
      const merged = applyOverrides(defaults, overrides);
      const parsed = runtimePolicySchema.safeParse(merged);
      if (!parsed.success) {
        throw new InvalidPolicyError(parsed.error.issues.map((i) => ({ field: i.path.join('.'), message: i.message })));
      }
      const problems = checkConsistency(parsed.data);
      if (problems.length) throw new InvalidPolicyError(problems);
      return { version: before.version + 1, overrides, updatedAt: new Date(clock.now()).toISOString(), updatedBy: actor };
    });
    snapshot = fromStored(stored);
    loadedAt = clock.now();
    // Stored already: an announcement that fails leaves the others to their periodic reload.
    await store.publish(SETTINGS_CHANGED, String(stored.version)).catch((err: Error) => logger.warn({ err: err.message }, 'runtime settings change not announced; other instances pick it up on their next reload'));
    return { before, after: snapshot };
  }

  return {
    current,
    refresh,
    update,
    /** The latest snapshot this instance holds (policy, overrides, version). */
    snapshot: (): SettingsSnapshot => snapshot,
    defaults: (): RuntimePolicy => defaults,
  };
}

export type RuntimeSettings = ReturnType<typeof createRuntimeSettings>;

/** The fields that differ between two policies, with their values before and after (the policy holds no secret). */
export function policyChanges(before: RuntimePolicy, after: RuntimePolicy): { field: string; from: unknown; to: unknown }[] {
  const changes: { field: string; from: unknown; to: unknown }[] = [];
  const compare = (field: string, from: unknown, to: unknown) => {
    if (JSON.stringify(from) !== JSON.stringify(to)) changes.push({ field, from, to });
  };
  for (const group of Object.keys(after) as (keyof RuntimePolicy)[]) {
    const a = before[group] as unknown;
    const b = after[group] as unknown;
    if (Array.isArray(b) || typeof b !== 'object' || b === null) {
      compare(group, a, b);
      continue;
    }
    for (const field of Object.keys(b)) compare(`${group}.${field}`, (a as Record<string, unknown>)[field], (b as Record<string, unknown>)[field]);
  }
  return changes;
}

/** Names of the fields that differ between two policies, e.g. ["tokens.accessTokenTtl"]. */
export const changedFields = (before: RuntimePolicy, after: RuntimePolicy): string[] => policyChanges(before, after).map((c) => c.field);
