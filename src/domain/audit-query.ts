import type { Store } from '../store/store.ts';
import { AUDIT_STREAM, parseAuditEntry, type StoredAuditEvent } from './audit.ts';

/**
 * Reading the audit trail: newest first, filtered server-side, in bounded slices of the
 * stream. A time range becomes a stream id range (ids start with the append time in ms),
 * widened by a little to allow for clock skew between the server and Redis, and then
 * the event's own `time` decides.
 */
export interface AuditFilter {
  /** Exact type, or a prefix ending in `*` (`login.*`). */
  type?: string;
  actor?: string;
  subject?: string;
  outcome?: 'success' | 'failure';
  /** Epoch ms, inclusive. */
  since?: number;
  /** Epoch ms, inclusive. */
  until?: number;
}

export interface AuditPage {
  events: StoredAuditEvent[];
  /** Pass back as `cursor` for the next (older) page; null when the scan reached the start. */
  nextCursor: string | null;
}

const SKEW_MS = 5 * 60_000;
const BATCH = 500;
/** Entries read per query at most: a sparse filter returns a short page and a cursor to go on. */
export const MAX_SCAN = 10_000;
const STREAM_ID = /^(\d{1,15})-(\d{1,20})$/;
/** The largest sequence number of a stream id (Redis keeps it in 64 bits). */
const MAX_SEQUENCE = 18446744073709551615n;

/** A stream id Redis accepts: ms and sequence within their 64 bits. */
export const isStreamId = (value: string): boolean => {
  const match = STREAM_ID.exec(value);
  return match !== null && BigInt(match[2]) <= MAX_SEQUENCE;
};

/** The id just before `id` in stream order (XREVRANGE's end is inclusive). */
export function previousStreamId(id: string): string | null {
  const match = STREAM_ID.exec(id);
  if (!match) return null;
  const ms = BigInt(match[1]);
  const seq = BigInt(match[2]);
  if (seq > 0n) return `${ms}-${seq - 1n}`;
  if (ms > 0n) return `${ms - 1n}-18446744073709551615`;
  return null;
}

function matcher(filter: AuditFilter): (event: StoredAuditEvent) => boolean {
  const typePrefix = filter.type?.endsWith('*') ? filter.type.slice(0, -1) : undefined;
  return (event) => {
    if (filter.type !== undefined && (typePrefix !== undefined ? !event.type.startsWith(typePrefix) : event.type !== filter.type)) return false;
    if (filter.actor !== undefined && event.actor !== filter.actor) return false;
    if (filter.subject !== undefined && event.subject !== filter.subject) return false;
    if (filter.outcome !== undefined && event.outcome !== filter.outcome) return false;
    const time = Date.parse(event.time);
    if (filter.since !== undefined && !(time >= filter.since)) return false;
    if (filter.until !== undefined && !(time <= filter.until)) return false;
    return true;
  };
}

export function createAuditQuery(deps: { store: Store }) {
  const { store } = deps;

  /** One page, newest first; `cursor` is the nextCursor of the previous page. */
  async function query(filter: AuditFilter, options: { cursor?: string; limit: number; maxScan?: number }): Promise<AuditPage> {
    const matches = matcher(filter);
    const start = filter.since !== undefined ? `${Math.max(0, filter.since - SKEW_MS)}-0` : '-';
    // A time before the stream's start (1970) leaves nothing to read; Redis refuses a negative id.
    if (filter.until !== undefined && filter.until + SKEW_MS < 0) return { events: [], nextCursor: null };
    let end = filter.until !== undefined ? `${filter.until + SKEW_MS}-${MAX_SEQUENCE}` : '+';
    if (options.cursor) {
      const before = previousStreamId(options.cursor);
      if (before === null) return { events: [], nextCursor: null };
      if (end === '+' || compare(before, end) < 0) end = before;
    }
    const maxScan = options.maxScan ?? MAX_SCAN;
    const events: StoredAuditEvent[] = [];
    let scanned = 0;
    let lastId: string | undefined;
    while (events.length < options.limit && scanned < maxScan) {
      const want = Math.min(BATCH, maxScan - scanned);
      const entries = await store.streamRange(AUDIT_STREAM, start, end, want, true);
      for (const entry of entries) {
        scanned++;
        lastId = entry.id;
        const event = parseAuditEntry(entry.id, entry.fields);
        if (matches(event)) events.push(event);
        if (events.length === options.limit) return { events, nextCursor: entry.id };
      }
      // Fewer than asked: the scan reached the start of the range.
      if (entries.length < want) return { events, nextCursor: null };
      const before = previousStreamId(lastId!);
      if (before === null) return { events, nextCursor: null };
      end = before;
    }
    return { events, nextCursor: lastId ?? null };
  }

  return { query };
}

export type AuditQuery = ReturnType<typeof createAuditQuery>;

function compare(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt);
  const [bm, bs] = b.split('-').map(BigInt);
  if (am !== bm) return am < bm ? -1 : 1;
  if (as !== bs) return as < bs ? -1 : 1;
  return 0;
}
