import type { Clock } from '../clock.ts';
import type { Logger } from '../logger.ts';
import type { Store } from '../store/store.ts';
import { uncachedReads, type CachedReads } from '../store/cached-reads.ts';
import type { AuditLog, RequestFacts } from './audit.ts';
import { displayPrefix, generateApiKey, parseApiKey } from './api-key-format.ts';
import { newId } from './ids.ts';
import { canonicalIp, ipAllowed, MAX_ALLOW_LIST_ENTRIES, normaliseAllowListEntry } from './ip-allow-list.ts';
import { sameHexDigest, type ServerSecrets } from './secrets.ts';
import type { UserRepository } from './users.ts';
import {
  EXPIRED_KEY_RETENTION_MS, graceKey, idKey, keyStatus, knownIpKey, nameKey, ownerKeysKey, recordKey, touchKey, usedKey, viewOf,
  type ApiKeyRecord, type ApiKeyView, type GraceMark, type LastUse,
} from './api-key-records.ts';

export type { ApiKeyRecord, ApiKeyStatus, ApiKeyView } from './api-key-records.ts';

export interface ApiKeyPolicy {
  maxLifetimeMs: number;
  rotationGraceMs: number;
}

export type ApiKeyFailure = 'malformed' | 'checksum' | 'environment' | 'unknown' | 'expired' | 'ip' | 'owner';

export interface ApiKeyMatch {
  keyId: string;
  ownerId: string;
  /** The key's scopes; after the owner check, only those the owner still holds. */
  scopes: string[];
  /** Epoch ms. */
  expiresAt: number;
}

export type ApiKeyAuthResult = ({ ok: true } & ApiKeyMatch) | { ok: false; reason: ApiKeyFailure };

export type ApiKeyErrorKind = 'name_taken' | 'scope_not_held' | 'lifetime_too_long' | 'invalid_allowed_ips' | 'not_found' | 'not_rotatable' | 'owner_invalid';

/** A rule of the API-key domain was broken; the routes decide what the client sees. */
export class ApiKeyError extends Error {
  readonly kind: ApiKeyErrorKind;
  readonly scope?: string;
  readonly maxLifetimeMs?: number;
  constructor(kind: ApiKeyErrorKind, detail: { scope?: string; maxLifetimeMs?: number; message?: string } = {}) {
    super(detail.message ?? kind);
    this.name = 'ApiKeyError';
    this.kind = kind;
    this.scope = detail.scope;
    this.maxLifetimeMs = detail.maxLifetimeMs;
  }
}

export interface NewApiKeyInput {
  ownerId: string;
  /** Scopes of the credential asking; a key never gets more than it and its owner hold. */
  grantableScopes: string[];
  name: string;
  description?: string;
  scopes: string[];
  /** Default: the policy maximum. */
  lifetimeMs?: number;
  allowedIps: string[];
  environment?: string;
}

/** Last-use time and address are written at most this often per key and address. */
export const LAST_USE_RESOLUTION_MS = 60_000;
const LOCAL_TOUCH_CACHE_MAX = 10_000;
/** Reads of an owner's key set by revokeAllForUser, for keys written while it runs. */
const REVOKE_ALL_PASSES = 5;
/** Most key records remembered for their owner's id; full, the memory starts over. */
const SEEN_RECORDS_MAX = 10_000;

const matchOf = (record: ApiKeyRecord, expiresAt: number): ApiKeyMatch => ({ keyId: record.id, ownerId: record.ownerId, scopes: record.scopes, expiresAt });

const intersect = (a: readonly string[], b: readonly string[]): string[] => {
  const set = new Set(b);
  return a.filter((s) => set.has(s));
};

export interface ApiKeyServiceDeps {
  store: Store;
  clock: Clock;
  secrets: ServerSecrets;
  users: Pick<UserRepository, 'findById' | 'findForCheck'>;
  /** Where a key's record and grace mark are read on every check (default the store itself). */
  cachedReads?: Pick<CachedReads, 'getManyParsed'>;
  audit: AuditLog;
  logger: Logger;
  /** The `<env>` of keys this server accepts and issues by default. */
  environment: string;
  /** Read on every use, so runtime settings changes apply at once. */
  policy: () => ApiKeyPolicy;
}

/**
 * API keys: issue, list, revoke, rotate with a grace period, and authenticate. The hot
 * path (`authenticate`) refuses malformed, mistyped and other-environment keys offline,
 * then reads the record with its grace mark and the owner (who must still exist, be
 * enabled and hold the scopes), plus a throttled last-use write. Those reads go through
 * the credential cache (cached-reads.ts): from memory while no change to them can have
 * been missed, else one MGET and one GET; for a key this process has seen before, the two
 * go to the store together, in one round trip.
 */
export function createApiKeyService(deps: ApiKeyServiceDeps) {
  const { store, clock, secrets, users, audit, logger, environment } = deps;
  const reads = deps.cachedReads ?? uncachedReads(store);
  const hashOf = (key: string) => secrets.keyedHash('api-key', key);
  const recentTouches = new Map<string, number>();
  // Records by hash, as last read. A record never changes once written (rotation writes the
  // successor's own; revocation deletes it), so one seen before names the key's owner in
  // advance, and the owner is read in the same round trip as the record. It is never
  // trusted alone: the record and its grace mark are read on every call and decide.
  const seenRecords = new Map<string, ApiKeyRecord>();
  const remember = (record: ApiKeyRecord) => {
    if (seenRecords.size >= SEEN_RECORDS_MAX && !seenRecords.has(record.hash)) seenRecords.clear();
    seenRecords.set(record.hash, record);
  };

  const retentionMs = (record: ApiKeyRecord) => Math.max(1, record.expiresAt - clock.now()) + EXPIRED_KEY_RETENTION_MS;

  const statusOf = (record: ApiKeyRecord, grace: GraceMark | null) => keyStatus(record, grace, clock.now());
  const toView = (record: ApiKeyRecord, grace: GraceMark | null, used: LastUse | null) => viewOf(record, grace, used, clock.now());

  async function loadById(id: string): Promise<{ record: ApiKeyRecord; grace: GraceMark | null } | null> {
    const hash = await store.get(idKey(id));
    if (!hash) return null;
    const [raw, graceRaw] = await store.getMany([recordKey(hash), graceKey(hash)]);
    if (!raw) return null;
    return { record: JSON.parse(raw) as ApiKeyRecord, grace: graceRaw ? (JSON.parse(graceRaw) as GraceMark) : null };
  }

  async function loadOwned(ownerId: string, id: string) {
    const found = await loadById(id);
    if (!found || found.record.ownerId !== ownerId) throw new ApiKeyError('not_found');
    return found;
  }

  async function liveOwner(ownerId: string) {
    const owner = await users.findById(ownerId);
    if (!owner || owner.disabled) throw new ApiKeyError('owner_invalid');
    return owner;
  }

  /** Claims the owner's name for a key id; a claim held by a dead key is taken over. */
  async function claimName(record: ApiKeyRecord): Promise<void> {
    const key = nameKey(record.ownerId, record.name);
    const ttlMs = Math.max(1, record.expiresAt - clock.now());
    if (await store.set(key, record.id, { onlyIfAbsent: true, ttlMs })) return;
    const holder = await store.get(key);
    const held = holder ? await loadById(holder) : null;
    if (held && statusOf(held.record, held.grace).status !== 'expired') throw new ApiKeyError('name_taken');
    await store.del([key]);
    if (!(await store.set(key, record.id, { onlyIfAbsent: true, ttlMs }))) throw new ApiKeyError('name_taken');
  }

  async function writeRecord(record: ApiKeyRecord): Promise<void> {
    const ttlMs = retentionMs(record);
    await store.set(recordKey(record.hash), JSON.stringify(record), { ttlMs });
    await store.set(idKey(record.id), record.hash, { ttlMs });
    await store.setAdd(ownerKeysKey(record.ownerId), [record.id], ttlMs);
  }

  /** Entries as CIDRs, deduplicated; the routes validate too, this keeps the rule in one place. */
  function allowList(entries: string[]): string[] {
    const cidrs = entries.map((entry) => normaliseAllowListEntry(entry));
    if (cidrs.length > MAX_ALLOW_LIST_ENTRIES || cidrs.some((c) => !c.ok)) throw new ApiKeyError('invalid_allowed_ips');
    return [...new Set(cidrs.map((c) => (c as { cidr: string }).cidr))];
  }

  function checkLifetime(lifetimeMs: number): void {
    const { maxLifetimeMs } = deps.policy();
    if (lifetimeMs > maxLifetimeMs) throw new ApiKeyError('lifetime_too_long', { maxLifetimeMs });
  }

  function newRecord(input: Omit<ApiKeyRecord, 'id' | 'hash' | 'prefix' | 'createdAt' | 'expiresAt'>, key: string): ApiKeyRecord {
    const now = clock.now();
    return {
      id: newId('key'),
      ...input,
      hash: hashOf(key),
      prefix: displayPrefix(key),
      createdAt: now,
      expiresAt: now + input.lifetimeMs,
    };
  }

  /** Issues a key. The returned `key` is the only time the secret exists outside the caller. */
  async function create(input: NewApiKeyInput, facts: RequestFacts = {}): Promise<{ key: string; view: ApiKeyView }> {
    const lifetimeMs = input.lifetimeMs ?? deps.policy().maxLifetimeMs;
    checkLifetime(lifetimeMs);
    const owner = await liveOwner(input.ownerId);
    const grantable = intersect(input.grantableScopes, owner.scopes);
    const scopes = [...new Set(input.scopes)];
    const missing = scopes.filter((s) => !grantable.includes(s));
    if (missing.length) {
      await audit.record({ type: 'apikey.created', outcome: 'failure', actor: owner.id, ...facts, details: { reason: 'scope_not_held', scopes: missing } });
      throw new ApiKeyError('scope_not_held', { scope: missing[0] });
    }
    const env = input.environment ?? environment;
    const key = generateApiKey(env);
    const record = newRecord({
      ownerId: owner.id,
      name: input.name.trim(),
      description: input.description?.trim() ?? '',
      scopes,
      allowedIps: allowList(input.allowedIps),
      environment: env,
      lifetimeMs,
    }, key);
    await claimName(record);
    await writeRecord(record);
    await audit.record({ type: 'apikey.created', outcome: 'success', actor: owner.id, subject: record.id, ...facts, details: { name: record.name, scopes, environment: env } });
    return { key, view: toView(record, null, null) };
  }

  async function list(ownerId: string): Promise<ApiKeyView[]> {
    const ids = await store.setMembers(ownerKeysKey(ownerId));
    if (!ids.length) return [];
    const hashes = await store.getMany(ids.map(idKey));
    const live = ids.map((id, i) => ({ id, hash: hashes[i] })).filter((k): k is { id: string; hash: string } => !!k.hash);
    const [records, graces, useds] = await Promise.all([
      store.getMany(live.map((k) => recordKey(k.hash))),
      store.getMany(live.map((k) => graceKey(k.hash))),
      store.getMany(live.map((k) => usedKey(k.id))),
    ]);
    const views: ApiKeyView[] = [];
    const gone = ids.filter((id) => !live.some((k) => k.id === id));
    live.forEach((k, i) => {
      const raw = records[i];
      if (!raw) return void gone.push(k.id);
      const record = JSON.parse(raw) as ApiKeyRecord;
      if (record.ownerId !== ownerId) return;
      views.push(toView(record, graces[i] ? JSON.parse(graces[i]!) : null, useds[i] ? JSON.parse(useds[i]!) : null));
    });
    if (gone.length) await store.setRemove(ownerKeysKey(ownerId), gone);
    return views.sort((a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id));
  }

  async function destroy(record: ApiKeyRecord): Promise<void> {
    // The record goes first, in one command with its grace mark: from here on the key fails.
    await store.del([recordKey(record.hash), graceKey(record.hash)]);
    await store.del([idKey(record.id), usedKey(record.id)]);
    const name = nameKey(record.ownerId, record.name);
    if ((await store.get(name)) === record.id) await store.del([name]);
    await store.setRemove(ownerKeysKey(record.ownerId), [record.id]);
  }

  /** Revokes one of the owner's keys at once. Someone else's key is "not found". */
  async function revoke(ownerId: string, id: string, facts: RequestFacts = {}): Promise<void> {
    const { record } = await loadOwned(ownerId, id);
    await destroy(record);
    await audit.record({ type: 'apikey.revoked', outcome: 'success', actor: ownerId, subject: id, ...facts, details: { name: record.name } });
  }

  /**
   * Every key of a user, at once (account disabled or deleted, or "sign out everywhere").
   * Keys are also refused on use while their owner is disabled or missing; this removes them.
   */
  async function revokeAllForUser(userId: string, actor: string, facts: RequestFacts = {}): Promise<number> {
    let revoked = 0;
    const seen = new Set<string>();
    // A key written while this runs (a create or rotation already under way) is caught by
    // reading the set again; one written after the last read stays listed, so it can be seen
    // and revoked, and is refused on use while its owner is disabled.
    for (let pass = 0; pass < REVOKE_ALL_PASSES; pass++) {
      const ids = (await store.setMembers(ownerKeysKey(userId))).filter((id) => !seen.has(id));
      if (!ids.length) break;
      for (const id of ids) {
        seen.add(id);
        const found = await loadById(id);
        if (!found || found.record.ownerId !== userId) continue;
        await destroy(found.record);
        revoked++;
        await audit.record({ type: 'apikey.revoked', outcome: 'success', actor, subject: id, ...facts, details: { name: found.record.name, owner: userId, reason: 'all_keys_of_user' } });
      }
    }
    if (seen.size) await store.setRemove(ownerKeysKey(userId), [...seen]);
    return revoked;
  }

  /**
   * Issues a successor with the same name, scopes (those the owner still holds), allowed
   * addresses and lifetime (capped by today's policy). The old key keeps working for the
   * grace period, so deployments can switch over, then dies. A key rotates only once.
   */
  async function rotate(ownerId: string, id: string, grantableScopes: string[], facts: RequestFacts = {}): Promise<{ key: string; view: ApiKeyView; previous: ApiKeyView }> {
    const { record, grace } = await loadOwned(ownerId, id);
    if (grace) throw new ApiKeyError('not_rotatable', { message: 'This key has already been rotated' });
    if (statusOf(record, null).status === 'expired') throw new ApiKeyError('not_rotatable', { message: 'This key has expired; create a new one' });
    const owner = await liveOwner(ownerId);
    const scopes = intersect(record.scopes, owner.scopes);
    const grantable = intersect(grantableScopes, owner.scopes);
    const missing = (scopes.length ? scopes : record.scopes).filter((s) => !grantable.includes(s));
    if (missing.length) {
      await audit.record({ type: 'apikey.rotated', outcome: 'failure', actor: ownerId, subject: id, ...facts, details: { reason: 'scope_not_held', scopes: missing } });
      throw new ApiKeyError('scope_not_held', { scope: missing[0] });
    }
    const { maxLifetimeMs, rotationGraceMs } = deps.policy();
    const key = generateApiKey(record.environment);
    const successor = newRecord({
      ownerId,
      name: record.name,
      description: record.description,
      scopes,
      allowedIps: record.allowedIps,
      environment: record.environment,
      lifetimeMs: Math.min(record.lifetimeMs, maxLifetimeMs),
      rotatedFrom: record.id,
    }, key);
    const mark: GraceMark = { until: Math.min(clock.now() + rotationGraceMs, record.expiresAt), successor: successor.id };
    // The mark must outlive the record, or the old key would come back to full life.
    const recordTtl = await store.ttl(recordKey(record.hash));
    const markTtl = recordTtl > 0 ? recordTtl + 60_000 : retentionMs(record);
    // The successor first, then the mark that dooms the old key (SET NX: of two rotations at
    // once, one wins; the other takes its successor back). A rotation that stops before the
    // mark leaves the old key whole and rotatable, never doomed with no successor to use.
    await writeRecord(successor);
    let marked = false;
    try {
      marked = await store.set(graceKey(record.hash), JSON.stringify(mark), { onlyIfAbsent: true, ttlMs: markTtl });
    } finally {
      if (!marked) await destroy(successor).catch(() => undefined);
    }
    if (!marked) throw new ApiKeyError('not_rotatable', { message: 'This key has already been rotated' });
    // The name now belongs to the successor.
    await store.set(nameKey(ownerId, successor.name), successor.id, { ttlMs: Math.max(1, successor.expiresAt - clock.now()) });
    // Revoked while this ran (a revocation deletes the record first): no successor for it.
    if ((await store.get(recordKey(record.hash))) === null) {
      await destroy(successor);
      throw new ApiKeyError('not_found');
    }
    await audit.record({ type: 'apikey.rotated', outcome: 'success', actor: ownerId, subject: id, ...facts, details: { successor: successor.id, graceEndsAt: new Date(mark.until).toISOString() } });
    const used = await store.get(usedKey(record.id));
    return { key, view: toView(successor, null, null), previous: toView(record, mark, used ? JSON.parse(used) : null) };
  }

  /** Records last use (time, address) at most once a minute per key and address; audits a new address. */
  async function touch(record: ApiKeyRecord, ip: string, facts: RequestFacts): Promise<void> {
    const now = clock.now();
    const local = `${record.id}|${ip}`;
    const last = recentTouches.get(local);
    if (last !== undefined && now - last < LAST_USE_RESOLUTION_MS && now >= last) return;
    if (recentTouches.size >= LOCAL_TOUCH_CACHE_MAX) recentTouches.clear();
    recentTouches.set(local, now);
    try {
      // Another instance may have written within the minute: the store marker decides.
      if (!(await store.set(touchKey(record.id, ip), '1', { onlyIfAbsent: true, ttlMs: LAST_USE_RESOLUTION_MS }))) return;
      const ttlMs = retentionMs(record);
      const [, firstFromIp] = await Promise.all([
        store.set(usedKey(record.id), JSON.stringify({ at: now, ip }), { ttlMs }),
        store.set(knownIpKey(record.id, ip), '1', { onlyIfAbsent: true, ttlMs }),
      ]);
      if (firstFromIp) {
        await audit.record({ type: 'apikey.new_ip', outcome: 'success', actor: record.ownerId, subject: record.id, ...facts, ip, details: { name: record.name } });
      }
    } catch (err) {
      logger.warn({ err: (err as Error).message, key_id: record.id }, 'api key last-use write failed');
    }
  }

  /**
   * Checks a presented key; never throws for a bad key, says why in `reason` (for logs
   * only). `onMatched` hears the key once it matched, is not expired and the address is
   * allowed, just before its owner is read (the owner may still refuse it, and narrows its
   * scopes): a caller can start its own store call then and share the round trip. For a
   * key seen before, it hears it from the remembered record, as the record is read: the
   * record may then still refuse it (revoked, or its rotation's grace over).
   */
  async function authenticate(key: string, facts: RequestFacts = {}, onMatched?: (match: ApiKeyMatch) => void): Promise<ApiKeyAuthResult> {
    const parsed = parseApiKey(key);
    if (!parsed.ok) return { ok: false, reason: parsed.reason };
    if (parsed.environment !== environment) return { ok: false, reason: 'environment' };
    const hash = hashOf(key);
    const ip = facts.ip ? canonicalIp(facts.ip) : '';
    const recordRead = reads.getManyParsed<ApiKeyRecord | GraceMark>([recordKey(hash), graceKey(hash)], JSON.parse) as Promise<[ApiKeyRecord | null, GraceMark | null]>;
    // A key seen before that would still pass its own checks has its owner read (and the
    // caller's count sent) alongside its record; any other takes the long way below.
    const seen = seenRecords.get(hash);
    const early = seen && clock.now() < seen.expiresAt && ipAllowed(seen.allowedIps, ip) ? seen : undefined;
    if (early) onMatched?.(matchOf(early, early.expiresAt));
    const [[record, grace], earlyOwner] = await Promise.all([recordRead, early && users.findForCheck(early.ownerId)]);
    if (!record) {
      seenRecords.delete(hash);
      return { ok: false, reason: 'unknown' };
    }
    // The lookup matched on the hash already; the stored hash is compared with it again in
    // constant time so that the decision never rests on a variable-time comparison.
    if (!sameHexDigest(hash, record.hash)) return { ok: false, reason: 'unknown' };
    const { status, diesAt } = statusOf(record, grace);
    if (status === 'expired') return { ok: false, reason: 'expired' };
    if (!ipAllowed(record.allowedIps, ip)) {
      await audit.record({ type: 'apikey.ip_denied', outcome: 'failure', actor: record.ownerId, subject: record.id, ...facts, ip });
      return { ok: false, reason: 'ip' };
    }
    if (!early) onMatched?.(matchOf(record, diesAt));
    const owner = early?.ownerId === record.ownerId ? earlyOwner : await users.findForCheck(record.ownerId);
    if (!owner || owner.disabled) return { ok: false, reason: 'owner' };
    remember(record);
    if (ip) await touch(record, ip, facts);
    return { ok: true, keyId: record.id, ownerId: owner.id, scopes: intersect(record.scopes, owner.scopes), expiresAt: diesAt };
  }

  return { create, list, revoke, revokeAllForUser, rotate, authenticate };
}

export type ApiKeyService = ReturnType<typeof createApiKeyService>;
