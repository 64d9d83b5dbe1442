import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';
import { routePath } from './route-dispatch.ts';
import type { Logger } from '../logger.ts';
import { renderMessage } from '../../views/message.ts';
import { isStoreUnavailable } from '../oidc/provider-edge.ts';

/**
 * The other pages a browser lands on: the provider's authorization, device-code and
 * logout pages (not the device flow's back-channel, /oauth/device/auth), the invitation
 * form and the self-service MFA page.
 */
const OTHER_PAGES = /^\/(?:oauth\/authorize(?:\/|$)|oauth\/device(?!\/auth(?:\/|$))(?:\/|$)|oauth\/logout(?:\/|$)|invite$|account\/mfa(?:\/|$))/;

/**
 * Errors on pages become a readable page, not JSON. On the sign-in pages (/interaction/)
 * every error does (an expired or unknown interaction above all); on the other pages, a
 * store outage (503, whether a route threw it or the provider did while saving its
 * session after the page was made) and a rate-limit refusal (429, with its headers): the
 * rest keeps the provider's own pages and the OAuth error redirects.
 */
export function pageErrors(logger: Logger): Middleware {
  return async (ctx, next) => {
    const path = routePath(ctx.path);
    const signIn = path.startsWith('/interaction/');
    if (!signIn && !OTHER_PAGES.test(path)) return next();
    try {
      await next();
    } catch (err) {
      const status = (err as { status?: number }).status ?? 500;
      const outage = isStoreUnavailable(err);
      const limited = err instanceof AppError && status === 429;
      if (!signIn && !outage && !limited) throw err;
      if (status >= 500 && !outage) logger.error({ request_id: ctx.state.requestId, err: (err as Error).message }, 'page failed');
      ctx.status = outage ? 503 : limited ? 429 : status >= 500 ? 500 : 400;
      if (outage) ctx.set('Retry-After', '5');
      if (limited) for (const [name, value] of Object.entries(err.headers)) ctx.set(name, value);
      ctx.type = 'html';
      ctx.body = renderMessage(outage ? 'Temporarily unavailable' : limited ? 'Too many requests' : 'Sign-in could not continue', [
        outage ? 'The service is temporarily unavailable. Try again in a moment.'
          : limited ? `Too many requests from your network. Try again in ${ctx.response.get('Retry-After') || 'a few'} seconds.`
          : status >= 500 ? 'Something went wrong on our side.' : 'This sign-in request has expired or is not valid. Go back to the application and start again.',
        `Request id: ${String(ctx.state.requestId ?? '')}`,
      ]);
    }
  };
}
