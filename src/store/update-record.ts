import { AppError } from '../errors/app-error.ts';
import type { Store } from './store.ts';

/** Tries of one change before giving up on a record that keeps changing under it. */
const UPDATE_ATTEMPTS = 8;

/**
 * Read-modify-write of one JSON record that loses no concurrent change: the write lands
 * only if the record still holds what was read (Store.compareAndSet; SET NX for a record
 * not there yet); otherwise `change` runs again on the record as it is now. So `change`
 * only computes the new record (it may read, and throw to refuse); whatever it decides
 * outside the record is taken from its last run.
 */
async function changeRecord<T>(store: Store, key: string, change: (current: T | null) => T | Promise<T>, createMissing: boolean): Promise<T | null> {
  for (let attempt = 0; attempt < UPDATE_ATTEMPTS; attempt++) {
    const raw = await store.get(key);
    if (raw === null && !createMissing) return null;
    const next = await change(raw === null ? null : (JSON.parse(raw) as T));
    const json = JSON.stringify(next);
    const written = raw === null ? await store.set(key, json, { onlyIfAbsent: true }) : await store.compareAndSet(key, raw, json);
    if (written) return next;
  }
  throw new AppError('CONFLICT', { message: 'The record kept changing under this request; try again' });
}

/** Changes an existing record (see changeRecord); null when it does not exist, or stopped existing meanwhile. */
export const updateRecord = <T>(store: Store, key: string, change: (current: T) => T | Promise<T>): Promise<T | null> =>
  changeRecord<T>(store, key, (current) => change(current as T), false);

/** Changes a record, or makes it: `change` gets null when there is none yet. */
export const upsertRecord = async <T>(store: Store, key: string, change: (current: T | null) => T | Promise<T>): Promise<T> =>
  (await changeRecord<T>(store, key, change, true)) as T;
