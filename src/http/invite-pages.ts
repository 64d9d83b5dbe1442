import Router from '@koa/router';
import type { Context } from 'koa';
import { MIN_PASSWORD_LENGTH } from '../domain/passwords.ts';
import { createAdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { renderMessage } from '../../views/message.ts';
import { renderSetPassword } from '../../views/set-password.ts';
import { parseBody } from './koa-body.ts';
import { requestFacts } from './request-facts.ts';

const DEAD_LINK = ['This link is invalid, already used or expired.', 'Ask your administrator for a new one.'];

/**
 * /invite: the page behind the one-time links of invitations and admin password resets.
 * The token travels in the query (never logged: the request log redacts `token`) and
 * in a hidden field; it is itself the proof, so the form needs no other CSRF token.
 */
export function invitePages(deps: Deps): Router {
  const { passwordSetup } = createAdminServices(deps);
  const router = new Router();
  const tokenOf = (value: unknown) => (typeof value === 'string' ? value.slice(0, 200) : '');

  const showForm = async (ctx: Context, token: string, error?: string) => {
    const link = await passwordSetup.describe(token);
    ctx.type = 'html';
    if (!link) {
      ctx.status = 404;
      ctx.body = renderMessage('Link not valid', DEAD_LINK);
      return;
    }
    ctx.status = error ? 400 : 200;
    ctx.body = renderSetPassword({ action: '/invite', token, email: link.email, purpose: link.purpose, minLength: MIN_PASSWORD_LENGTH, error });
  };

  router.get('/invite', async (ctx) => {
    await showForm(ctx, tokenOf(ctx.query.token));
  });

  router.post('/invite', parseBody(), async (ctx) => {
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const token = tokenOf(body.token);
    const password = typeof body.password === 'string' ? body.password : '';
    if (password !== body.confirm) return showForm(ctx, token, 'The two passwords differ.');
    try {
      const { email } = await passwordSetup.accept(token, password, requestFacts(ctx));
      ctx.type = 'html';
      ctx.body = renderMessage('Password set', [`You can now sign in as ${email}.`]);
    } catch (err) {
      if (!(err instanceof AppError)) throw err;
      if (err.code === 'VALIDATION_FAILED') return showForm(ctx, token, `The password must be at least ${MIN_PASSWORD_LENGTH} characters.`);
      ctx.status = 404;
      ctx.type = 'html';
      ctx.body = renderMessage('Link not valid', DEAD_LINK);
    }
  });
  return router;
}
