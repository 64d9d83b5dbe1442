import Router from '@koa/router';
import type { Context } from 'koa';
import type { Deps } from '../deps.ts';
import { randomAlphanumeric } from '../domain/ids.ts';
import { loginEndedSince, type User } from '../domain/users.ts';
import { epochSeconds } from '../clock.ts';
import { AppError } from '../errors/app-error.ts';
import { parseBody } from '../http/koa-body.ts';
import { requestFacts } from '../http/request-facts.ts';
import { renderEnrolScan, renderEnrolSignIn, renderRecoveryCodes } from '../../views/mfa-enrol.ts';
import { renderMessage } from '../../views/message.ts';
import { createCsrf } from './csrf.ts';
import { unlessLocked } from './locked-page.ts';

export const ENROL_PATH = '/account/mfa';
const COOKIE = 'nsa_enrol';
const STATE_TTL_MS = 15 * 60 * 1000;
const HASH_PURPOSE = 'mfa-enrol';

/**
 * The TOTP enrolment page: sign in with email and password, scan the QR code, confirm a
 * code, read the recovery codes once. The browser holds a random state in an HttpOnly,
 * SameSite=Strict cookie scoped to this page; the store maps it to the signed-in user for
 * 15 minutes, and every form carries a CSRF token derived from it.
 */
export function enrolRoutes(deps: Pick<Deps, 'store' | 'secrets' | 'users' | 'login' | 'mfa' | 'clock'>): Router {
  const { store, secrets, users } = deps;
  const csrf = createCsrf(secrets.macKey('csrf-mfa-enrol'));
  const enrolKey = (state: string) => `mfa-enrol:${secrets.keyedHash(HASH_PURPOSE, state)}`;
  const router = new Router({ prefix: ENROL_PATH });

  const stateOf = (ctx: Context): string | undefined => {
    const value = ctx.cookies.get(COOKIE, { signed: false });
    return value && /^[A-Za-z0-9]{32}$/.test(value) ? value : undefined;
  };
  const setState = (ctx: Context, value: string, maxAge: number) =>
    ctx.cookies.set(COOKIE, value, { path: ENROL_PATH, httpOnly: true, sameSite: 'strict', secure: ctx.secure, signed: false, maxAge, overwrite: true });

  /** The state of this browser, when the form's CSRF token matches it. */
  const checkedState = (ctx: Context): string | undefined => {
    const state = stateOf(ctx);
    return state && csrf.isValid(state, (ctx.request.body as Record<string, unknown> | undefined)?.csrf) ? state : undefined;
  };

  const html = (ctx: Context, body: string, status = 200) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = body;
  };

  function signInPage(ctx: Context, options: { error?: string; email?: string; status?: number } = {}) {
    // A fresh state for every sign-in form: nothing from an earlier visit carries over.
    const state = randomAlphanumeric(32);
    setState(ctx, state, STATE_TTL_MS);
    html(ctx, renderEnrolSignIn({ action: ENROL_PATH, csrfToken: csrf.tokenFor(state), email: options.email, error: options.error }), options.status);
  }

  async function scanPage(ctx: Context, state: string, user: User, error?: string, status = 200) {
    const setup = await deps.mfa.pendingSetup(user);
    if (!setup) return signInPage(ctx, { error: 'The setup expired. Sign in to start again.', status: 400 });
    html(ctx, renderEnrolScan({
      action: `${ENROL_PATH}/confirm`,
      csrfToken: csrf.tokenFor(state),
      email: user.email,
      qrCode: setup.qrCode,
      manualEntryKey: setup.manual_entry_key,
      error,
    }), status);
  }

  const refused = (ctx: Context) =>
    html(ctx, renderMessage('Request refused', ['This form has expired or did not come from this site.'], undefined), 403);

  router.get('/', (ctx) => signInPage(ctx));

  router.post('/', parseBody(), async (ctx) => {
    const state = checkedState(ctx);
    if (!state) return refused(ctx);
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.slice(0, 320) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    if (!email || !password) return signInPage(ctx, { error: 'Invalid email or password.', email, status: 401 });
    // When the password was checked: every login of the user ended after it ends this setup too.
    const checkedAtS = epochSeconds(deps.clock);
    const checked = await unlessLocked(ctx,
      () => deps.login.checkPassword(email, password, requestFacts(ctx), 'page'),
      (message) => signInPage(ctx, { error: message, email, status: 429 }));
    if (!checked) return;
    if (!checked.ok) return signInPage(ctx, { error: 'Invalid email or password.', email, status: 401 });
    if (checked.mfaRequired) {
      await checked.attempt.release();
      return html(ctx, renderMessage('Already set up', ['Two-step verification is already on for this account. To set up a new device, remove it first (DELETE /v1/auth/mfa/totp with a current code).']), 409);
    }
    await deps.mfa.beginSetup(checked.user);
    await store.set(enrolKey(state), JSON.stringify({ userId: checked.user.id, checkedAtS }), { ttlMs: STATE_TTL_MS });
    await scanPage(ctx, state, checked.user);
  });

  router.post('/confirm', parseBody(), async (ctx) => {
    const state = checkedState(ctx);
    if (!state) return refused(ctx);
    const raw = await store.get(enrolKey(state));
    // Written before the sign-in time was kept: a bare user id, as old as can be.
    const pending = raw ? (raw.startsWith('{') ? JSON.parse(raw) as { userId: string; checkedAtS: number } : { userId: raw, checkedAtS: 0 }) : null;
    const user = pending ? await users.findById(pending.userId) : null;
    // Disabled, or a password reset or "revoke sessions" since the password was checked: start again.
    if (!pending || !user || user.disabled || loginEndedSince(user, pending.checkedAtS)) {
      return signInPage(ctx, { error: 'The setup expired. Sign in to start again.', status: 400 });
    }
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const code = typeof body.code === 'string' ? body.code.slice(0, 16) : '';
    let codes: string[] | null;
    try {
      codes = await deps.mfa.confirmSetup(user, code, requestFacts(ctx));
    } catch (err) {
      if (err instanceof AppError && err.code === 'CONFLICT') return signInPage(ctx, { error: 'The setup expired or is already done. Sign in to start again.', status: 409 });
      throw err;
    }
    if (!codes) return scanPage(ctx, state, user, 'That code is not valid. Check the time on your device and try the next code.', 400);
    await store.del([enrolKey(state)]);
    setState(ctx, '', 0);
    html(ctx, renderRecoveryCodes(codes));
  });

  return router;
}
