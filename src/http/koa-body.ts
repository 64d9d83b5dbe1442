import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';

export const BODY_LIMIT = '64kb';
/** Deepest nesting of arrays and objects a JSON body may have (no route needs more than a few). */
export const MAX_JSON_DEPTH = 32;

/** Whether a parsed value nests deeper than `max`; iterative, so a hostile body cannot exhaust the stack. */
export function nestedDeeperThan(value: unknown, max: number): boolean {
  const stack: [unknown, number][] = [[value, 0]];
  while (stack.length) {
    const [item, depth] = stack.pop()!;
    if (item === null || typeof item !== 'object') continue;
    if (depth >= max) return true;
    for (const child of Object.values(item)) stack.push([child, depth + 1]);
  }
  return false;
}

/**
 * Parses JSON and form bodies on our own routes only (never in front of the provider).
 * Malformed or too deeply nested bodies are VALIDATION_FAILED; bodies over BODY_LIMIT 413.
 */
export function parseBody(): Middleware {
  const parser = bodyParser({
    enableTypes: ['json', 'form'],
    // DELETE too: removing TOTP carries the confirming code in its body.
    parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
    jsonLimit: BODY_LIMIT,
    formLimit: BODY_LIMIT,
    encoding: 'utf-8',
    onError: (err) => {
      const status = (err as { status?: number }).status;
      if (status === 413) throw new AppError('PAYLOAD_TOO_LARGE', { extra: { details: [{ field: 'body', message: `larger than ${BODY_LIMIT}` }] } });
      throw new AppError('VALIDATION_FAILED', { message: 'Request body is not valid', extra: { details: [{ field: 'body', message: 'malformed JSON or form body' }] } });
    },
  }) as unknown as Middleware;
  return (ctx, next) => parser(ctx, async () => {
    if (nestedDeeperThan(ctx.request.body, MAX_JSON_DEPTH)) {
      throw new AppError('VALIDATION_FAILED', { message: 'Request body is not valid', extra: { details: [{ field: 'body', message: `nested deeper than ${MAX_JSON_DEPTH} levels` }] } });
    }
    await next();
  });
}
