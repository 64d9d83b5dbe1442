import { bodyParser } from '@koa/bodyparser';
import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';

export const BODY_LIMIT = '64kb';

/** Parses JSON and form bodies on our own routes only (never in front of the provider). */
export function parseBody(): Middleware {
  return bodyParser({
    enableTypes: ['json', 'form'],
    // DELETE too: removing TOTP carries the confirming code in its body.
    parsedMethods: ['POST', 'PUT', 'PATCH', 'DELETE'],
    jsonLimit: BODY_LIMIT,
    formLimit: BODY_LIMIT,
    encoding: 'utf-8',
    onError: (err) => {
      const status = (err as { status?: number }).status;
      if (status === 413) throw new AppError('PAYLOAD_TOO_LARGE');
      throw new AppError('VALIDATION_FAILED', { message: 'Request body is not valid', extra: { details: [{ field: 'body', message: 'malformed JSON or form body' }] } });
    },
  }) as unknown as Middleware;
}
