import type { Context } from 'koa';
import { z } from 'zod';
import { epochSeconds } from '../clock.ts';
import type { Deps } from '../deps.ts';
import { AppError, validationFailed } from '../errors/app-error.ts';
import { requestFacts } from '../http/request-facts.ts';
import type { FirstPartyTokens, IssuedTokens } from '../oidc/first-party-tokens.ts';
import { route, type RouteSpec } from './route.ts';

const TAG = 'Sign-in';

/**
 * Cookie mode (the guide's "httpOnly cookies" advice): the refresh token lives in a cookie
 * that page scripts cannot read and that only /v1/auth/* ever receives; a refresh from it
 * needs the login's CSRF token in `X-CSRF-Token` as well.
 */
export const REFRESH_COOKIE = 'nsa_refresh';
export const CSRF_HEADER = 'x-csrf-token';
const COOKIE_PATH = '/v1/auth';

function setRefreshCookie(ctx: Context, value: string, maxAgeSeconds: number): void {
  // Written by hand: Koa refuses `Secure` on a plain-HTTP hop (e.g. behind a TLS proxy without TRUST_PROXY).
  ctx.append('Set-Cookie', `${REFRESH_COOKIE}=${value}; Path=${COOKIE_PATH}; Max-Age=${Math.max(0, maxAgeSeconds)}; Secure; HttpOnly; SameSite=Strict`);
}

const clearRefreshCookie = (ctx: Context): void => setRefreshCookie(ctx, '', 0);

const readRefreshCookie = (ctx: Context): string | undefined => ctx.cookies.get(REFRESH_COOKIE, { signed: false }) || undefined;

const tokenResponse = z.object({
  token: z.string().describe('JWT access token (RFC 9068): send as Authorization: Bearer'),
  refreshToken: z.string().optional().describe('one-time refresh token; absent in cookie mode, where it is set as the nsa_refresh cookie'),
  expiresIn: z.number().int().describe('seconds the access token lives'),
  tokenType: z.literal('Bearer'),
  csrfToken: z.string().optional().describe('cookie mode only: send as X-CSRF-Token with /v1/auth/refresh'),
});

const loginBody = z.object({
  email: z.email('must be an email address').max(320),
  password: z.string().min(1, 'must not be empty').max(1024),
  totp_code: z.string().regex(/^\s*\d{3}\s?\d{3}\s*$/, 'must be the 6-digit code of the authenticator app').optional(),
  recovery_code: z.string().min(1).max(32).optional().describe('one of the recovery codes shown when TOTP was enabled, instead of totp_code'),
  useCookie: z.boolean().optional().describe('cookie mode: the refresh token goes into a Secure, HttpOnly, SameSite=Strict cookie scoped to /v1/auth'),
});

const refreshBody = z.object({
  refreshToken: z.string().min(1).max(4096).optional().describe('required unless the nsa_refresh cookie is sent (with X-CSRF-Token)'),
});

/**
 * /v1/auth/login, /refresh, /logout: the first-party sign-in. Tokens come from the
 * provider's own models (see first-party-tokens.ts); failures, delays and locks from the
 * login service shared with the sign-in pages.
 */
export function authRoutes(deps: Pick<Deps, 'login' | 'accessTokens' | 'audit' | 'clock'>, tokens: FirstPartyTokens): RouteSpec[] {
  function respond(ctx: Context, issued: IssuedTokens, cookieMode: boolean): void {
    const { token, refreshToken, expiresIn, tokenType } = issued;
    if (cookieMode) {
      setRefreshCookie(ctx, refreshToken, issued.refreshExpiresAt - epochSeconds(deps.clock));
      ctx.body = { token, expiresIn, tokenType, csrfToken: tokens.csrfTokenFor(issued.grantId) };
    } else {
      ctx.body = { token, refreshToken, expiresIn, tokenType };
    }
  }

  return [
    route({
      method: 'post',
      path: '/auth/login',
      summary: 'Sign in with email and password (and a TOTP or recovery code when MFA is on)',
      tag: TAG,
      auth: 'none',
      body: loginBody,
      responses: {
        200: { description: 'Signed in', schema: tokenResponse },
        401: { description: 'AUTH_FAILED (wrong email, password or code; disabled account) or MFA_REQUIRED' },
        429: { description: 'ACCOUNT_LOCKED: too many failures; Retry-After says when to try again' },
      },
      async handler(ctx, { body }) {
        const { user, amr } = await deps.login.login(
          { email: body.email, password: body.password, secondFactor: body.totp_code ?? body.recovery_code },
          requestFacts(ctx),
        );
        respond(ctx, await tokens.issue(user, amr), body.useCookie === true);
      },
    }),
    route({
      method: 'post',
      path: '/auth/refresh',
      summary: 'Trade a refresh token for a new pair; the presented one dies, and presenting it again ends the whole login',
      tag: TAG,
      auth: 'none',
      body: refreshBody,
      responses: {
        200: { description: 'New tokens', schema: tokenResponse },
        401: { description: 'INVALID_TOKEN: unknown, expired, used or revoked refresh token' },
        403: { description: 'FORBIDDEN: cookie mode without the right X-CSRF-Token' },
      },
      async handler(ctx, { body }) {
        const facts = requestFacts(ctx);
        if (body.refreshToken) {
          respond(ctx, await tokens.refresh(body.refreshToken, facts), false);
          return;
        }
        const fromCookie = readRefreshCookie(ctx);
        if (!fromCookie) throw validationFailed([{ field: 'refreshToken', message: 'required (or the nsa_refresh cookie with X-CSRF-Token)' }]);
        const csrfToken = ctx.get(CSRF_HEADER);
        if (!csrfToken) throw new AppError('FORBIDDEN', { message: 'CSRF token missing or invalid' });
        try {
          respond(ctx, await tokens.refresh(fromCookie, facts, { csrfToken }), true);
        } catch (err) {
          if (err instanceof AppError && err.code === 'INVALID_TOKEN') clearRefreshCookie(ctx);
          throw err;
        }
      },
    }),
    route({
      method: 'post',
      path: '/auth/logout',
      summary: 'End the login of the presented access token: every refresh and access token of it stops working',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      responses: { 204: { description: 'Signed out' } },
      async handler(ctx, { principal }) {
        const facts = requestFacts(ctx);
        if (principal.grantId) {
          await tokens.logout(principal.subject, principal.grantId, facts);
        } else {
          await deps.accessTokens.revoke({ jti: principal.credentialId, exp: principal.expiresAt ?? 0 });
          await deps.audit.record({ type: 'logout', outcome: 'success', actor: principal.subject, ...facts });
        }
        // The refresh cookie is cleared only with its login ended: the user's other login in
        // this browser ends too, and a stranger's cookie is left alone.
        const cookie = readRefreshCookie(ctx);
        const cookieLogin = cookie ? await tokens.loginOf(cookie) : undefined;
        if (cookieLogin && cookieLogin.userId === principal.subject) {
          if (cookieLogin.grantId !== principal.grantId) await tokens.logout(principal.subject, cookieLogin.grantId, facts);
          clearRefreshCookie(ctx);
        } else if (cookie && !cookieLogin) {
          clearRefreshCookie(ctx); // dead already: nothing to keep
        }
        ctx.status = 204;
      },
    }),
  ];
}
