import type { Context } from 'koa';
import { AppError } from '../errors/app-error.ts';

/** What the pages say while an account or address is locked out. */
export function lockedMessage(retryAfterSeconds: number): string {
  const minutes = Math.ceil(retryAfterSeconds / 60);
  return retryAfterSeconds < 60
    ? `Too many failed attempts. Wait ${retryAfterSeconds} second${retryAfterSeconds === 1 ? '' : 's'} and try again.`
    : `Too many failed attempts. Try again in ${minutes} minute${minutes === 1 ? '' : 's'}.`;
}

/**
 * Runs a sign-in step; when the lockout refuses it, answers 429 with Retry-After and lets
 * `render` show the form again with the lock message. Returns undefined in that case.
 */
export async function unlessLocked<T>(ctx: Context, step: () => Promise<T>, render: (message: string) => Promise<void> | void): Promise<T | undefined> {
  try {
    return await step();
  } catch (err) {
    if (!(err instanceof AppError) || err.code !== 'ACCOUNT_LOCKED') throw err;
    const retryAfter = Number(err.headers['Retry-After'] ?? '60');
    ctx.status = 429;
    ctx.set('Retry-After', String(retryAfter));
    await render(lockedMessage(retryAfter));
    return undefined;
  }
}
