import type { Context, Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Metrics } from '../metrics.ts';
import { epochSeconds, type Clock } from '../clock.ts';
import { loginEndedSince, type UserRepository } from '../domain/users.ts';
import { StoreUnavailableError } from '../store/store.ts';
import { AppError } from '../errors/app-error.ts';
import { renderMessage } from '../../views/message.ts';
import { routePath } from '../http/route-dispatch.ts';
import { peekedFormParams } from './fast-path-request.ts';

/** Whether an error (or anything in its cause chain) is the store being out of reach. */
export function isStoreUnavailable(err: unknown): boolean {
  for (let e = err, hops = 0; e && hops < 5; e = (e as { cause?: unknown }).cause, hops++) {
    if (e instanceof StoreUnavailableError) return true;
  }
  return false;
}

/** The grant an access token came from: the last step of its `gty` ("authorization_code refresh_token" → refresh_token). */
export function grantLabel(gty: unknown): string {
  const last = typeof gty === 'string' ? gty.trim().split(/\s+/).at(-1) ?? '' : '';
  return /^[\w.:-]{1,80}$/.test(last) ? last : 'other';
}

/**
 * Hooks on a provider instance: access tokens issued, by grant, for /metrics (the model
 * events cover the token endpoint and the /v1 logins and service-account tokens minted
 * with the provider's models alike), and a mark on the request when a server_error came
 * from the store being down (see providerStoreOutage). oidc-provider emits server_error
 * with the request's own Koa context.
 */
export function instrumentProvider(provider: Provider, metrics: Metrics): void {
  const issued = (token: { gty?: unknown }) => metrics.tokensIssued.inc({ grant_type: grantLabel(token.gty) });
  // JWT access tokens are not stored ("issued"); opaque ones are ("saved").
  provider.on('access_token.issued', issued);
  provider.on('access_token.saved', issued);
  provider.on('client_credentials.issued', () => metrics.tokensIssued.inc({ grant_type: 'client_credentials' }));
  provider.on('client_credentials.saved', () => metrics.tokensIssued.inc({ grant_type: 'client_credentials' }));
  provider.on('server_error', (ctx: Context, err: unknown) => {
    if (isStoreUnavailable(err)) ctx.state.storeUnavailable = true;
  });
}

/**
 * oidc-provider answers every unexpected error with 500 server_error. When the cause was the
 * store being out of reach, the truth is 503 (try again shortly): JSON endpoints get
 * RFC 6749's temporarily_unavailable, pages a plain "try again" page.
 */
export function providerStoreOutage(): Middleware {
  return async (ctx, next) => {
    await next();
    if (!ctx.state.storeUnavailable || ctx.status !== 500) return;
    const requestId = String(ctx.state.requestId ?? '');
    ctx.status = 503;
    ctx.set('Retry-After', '5');
    if (ctx.response.is('html')) {
      ctx.body = renderMessage('Temporarily unavailable', ['The service is temporarily unavailable. Try again in a moment.', `Request id: ${requestId}`]);
    } else {
      // The same words as every other OAuth-form 503 (errorHandler's), whichever path met the outage.
      ctx.body = { error: 'temporarily_unavailable', error_description: new AppError('SERVICE_UNAVAILABLE').publicMessage, request_id: requestId };
    }
  };
}

/**
 * A form of the provider's own pages (the device-code entry, POST /oauth/device) sent
 * without a session cookie the provider knows (a script, a cookie that expired) makes the
 * provider touch a session it never saved, and its own session save then throws: a 500
 * for what is a stale or forged form. It gets a 400 page that says to start again.
 */
export function unsavedSessionGuard(): Middleware {
  return async (ctx, next) => {
    try {
      await next();
    } catch (err) {
      if (!(err instanceof TypeError) || !err.message.includes('previously persisted Sessions')) throw err;
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = renderMessage('This page has expired', [
        'Go back to the page you came from, reload it and try again.',
        `Request id: ${String(ctx.state.requestId ?? '')}`,
      ]);
    }
  };
}

/**
 * A sign-in the pages finished (the password, and the code with MFA on) becomes a login
 * only when the browser comes back to resume the authorization (or the device flow), which
 * may be much later.
 * If by then the user is disabled or deleted, or every login of theirs was ended after the
 * password was checked (a password reset, "revoke sessions"), the sign-in is dropped from
 * the interaction's result: the provider then asks to sign in again, as for any
 * authorization without a login. If the client is gone or no longer lists the request's
 * redirect_uri (an admin removed it meanwhile), the authorization ends here with an error
 * page: the provider checked the URI when the request came in, not when it resumes.
 */
export function staleSignInGuard(deps: { users: Pick<UserRepository, 'findById'>; clock: Clock }, provider: () => Provider): Middleware {
  return async (ctx, next) => {
    // The interaction the provider resumes is the one its signed resume cookie names, whatever
    // the path says (it checks only that the cookie's uid matches the interaction it loads,
    // on /oauth/authorize/:uid and /oauth/device/:uid alike). The browser sends that cookie
    // to the resume path only; a request carrying it anywhere else is checked all the same.
    const uid = ctx.method === 'GET' || ctx.method === 'POST'
      ? ctx.cookies.get(provider().cookieName('resume'), { signed: true })
      : undefined;
    if (uid) {
      const interaction = await provider().Interaction.find(uid);
      const params = interaction?.params as { client_id?: unknown; redirect_uri?: unknown } | undefined;
      if (params && typeof params.client_id === 'string' && typeof params.redirect_uri === 'string') {
        const client = await provider().Client.find(params.client_id);
        if (!client || !client.redirectUriAllowed(params.redirect_uri)) {
          await interaction!.destroy();
          ctx.status = 400;
          ctx.type = 'html';
          ctx.body = renderMessage('This sign-in can no longer finish', [
            'The application changed its settings while you were signing in. Go back to it and start again.',
            `Request id: ${String(ctx.state.requestId ?? '')}`,
          ]);
          return;
        }
      }
      const login = interaction?.result?.login as { accountId?: string; ts?: number } | undefined;
      if (interaction && login?.accountId) {
        const user = await deps.users.findById(login.accountId);
        if (!user || user.disabled || (typeof login.ts === 'number' && loginEndedSince(user, login.ts))) {
          const { login: _dropped, ...rest } = interaction.result!;
          interaction.result = rest;
          // The provider set exp by its own clock; a minute more at most is harmless.
          await interaction.save(Math.max(60, (interaction.exp ?? 0) - epochSeconds(deps.clock)));
        }
      }
    }
    await next();
  };
}

/**
 * A token request naming a `resource` other than our API is refused here, before the
 * provider: oidc-provider spends the code, device code or refresh token first and checks
 * the resource after, so the client's retry without it would be a reuse that ends the
 * whole login. The answer is the provider's own (RFC 8707 invalid_target). A body that
 * has not fully arrived yet is left to the provider.
 */
export function foreignResourceGuard(audience: string): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || routePath(ctx.path) !== '/oauth/token') return next();
    const resource = (await peekedFormParams(ctx))?.resource;
    const asked = resource === undefined ? [] : Array.isArray(resource) ? resource : [resource];
    if (asked.every((value) => value === audience)) return next();
    ctx.status = 400;
    ctx.set('Cache-Control', 'no-store');
    ctx.set('Pragma', 'no-cache');
    ctx.body = { error: 'invalid_target', error_description: 'resource indicator is missing, or unknown', request_id: String(ctx.state.requestId ?? '') };
  };
}

/** The body limit of every JSON and form body (koa-body.ts), in bytes. */
const MAX_BODY_BYTES = 64 * 1024;

/**
 * A body declared larger than the limit is refused with 413 before the provider, whose
 * own parser answers it with a 400 ("failed to parse the request body"): the contract
 * says 413, as /v1 answers it, in the OAuth error shape here.
 */
export function oauthBodyLimit(): Middleware {
  return async (ctx, next) => {
    if (ctx.method !== 'POST' || !routePath(ctx.path).startsWith('/oauth/')) return next();
    if (Number(ctx.get('content-length')) > MAX_BODY_BYTES) throw new AppError('PAYLOAD_TOO_LARGE');
    return next();
  };
}
