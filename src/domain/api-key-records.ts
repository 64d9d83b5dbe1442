/**
 * How API keys are kept in the store, and what a caller may see of them. The key itself
 * is never stored: only its keyed hash (HMAC), which is also its lookup key.
 */

/** What is stored for a key. The key itself never is: only its keyed hash (HMAC). */
export interface ApiKeyRecord {
  id: string;
  ownerId: string;
  name: string;
  description: string;
  scopes: string[];
  /** Normalised CIDRs; empty allows every address. */
  allowedIps: string[];
  environment: string;
  /** keyedHash('api-key', key), hex. */
  hash: string;
  /** `nsa_<env>_` and 4 random characters, to tell keys apart in lists. */
  prefix: string;
  /** Epoch ms. */
  createdAt: number;
  expiresAt: number;
  /** The lifetime asked for at creation; a successor gets the same. */
  lifetimeMs: number;
  rotatedFrom?: string;
}

/** Set on a key once it has been rotated: it dies at `until` (epoch ms). */
export interface GraceMark { until: number; successor: string }

export type ApiKeyStatus = 'active' | 'rotated' | 'expired';

/** Metadata a caller may see about a key: never the key or its hash. */
export interface ApiKeyView {
  id: string;
  name: string;
  description: string;
  prefix: string;
  scopes: string[];
  allowedIps: string[];
  environment: string;
  status: ApiKeyStatus;
  createdAt: string;
  expiresAt: string;
  lastUsedAt: string | null;
  lastUsedIp: string | null;
  rotatedFrom?: string;
  rotatedTo?: string;
}

/** When and from where a key was last used (written at most once a minute per address). */
export interface LastUse { at: number; ip: string }

/** How long metadata of an expired key stays listable before the store drops it. */
export const EXPIRED_KEY_RETENTION_MS = 7 * 24 * 3600 * 1000;

export const normaliseName = (name: string): string => name.trim().toLowerCase();

// The record and its grace mark share the hash's tag (read together with one MGET on the
// hot path); keys about one key id share the id's tag (deleted together).
export const recordKey = (hash: string) => `apikey:{${hash}}`;
/** The prefix of a key's record and its grace mark: what every check of a key reads. */
export const API_KEY_RECORD_PREFIX = 'apikey:{';
export const graceKey = (hash: string) => `apikey:{${hash}}:grace`;
export const idKey = (id: string) => `apikey-id:{${id}}`;
export const usedKey = (id: string) => `apikey-id:{${id}}:used`;
export const knownIpKey = (id: string, ip: string) => `apikey-id:{${id}}:ip:${ip}`;
export const touchKey = (id: string, ip: string) => `apikey-id:{${id}}:touch:${ip}`;
export const ownerKeysKey = (ownerId: string) => `user-apikeys:${ownerId}`;
export const nameKey = (ownerId: string, name: string) => `apikey-name:${ownerId}:${encodeURIComponent(normaliseName(name))}`;

/** A key dies at its expiry or, once rotated, at the end of the grace period, whichever is first. */
export function keyStatus(record: ApiKeyRecord, grace: GraceMark | null, now: number): { status: ApiKeyStatus; diesAt: number } {
  const diesAt = Math.min(record.expiresAt, grace?.until ?? Number.POSITIVE_INFINITY);
  if (now >= diesAt) return { status: 'expired', diesAt };
  return { status: grace ? 'rotated' : 'active', diesAt };
}

export function viewOf(record: ApiKeyRecord, grace: GraceMark | null, used: LastUse | null, now: number): ApiKeyView {
  const { status, diesAt } = keyStatus(record, grace, now);
  return {
    id: record.id,
    name: record.name,
    description: record.description,
    prefix: record.prefix,
    scopes: record.scopes,
    allowedIps: record.allowedIps,
    environment: record.environment,
    status,
    createdAt: new Date(record.createdAt).toISOString(),
    expiresAt: new Date(diesAt).toISOString(),
    lastUsedAt: used ? new Date(used.at).toISOString() : null,
    lastUsedIp: used?.ip ?? null,
    ...(record.rotatedFrom ? { rotatedFrom: record.rotatedFrom } : {}),
    ...(grace ? { rotatedTo: grace.successor } : {}),
  };
}
