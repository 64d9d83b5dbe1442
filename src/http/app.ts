import Koa from 'koa';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { createProviderHolder, type ProviderHolder } from '../oidc/provider-holder.ts';
import { interactionRoutes } from '../interactions/routes.ts';
import { enrolRoutes } from '../interactions/enrol-routes.ts';
import { userinfoRoutes } from '../oidc/userinfo.ts';
import { apiRoutes } from '../api/routes.ts';
import { requestId } from './koa-request-id.ts';
import { requestLog } from './koa-request-log.ts';
import { errorHandler } from './koa-errors.ts';
import { securityHeaders } from './koa-security-headers.ts';
import { healthRoutes } from './health-routes.ts';
import { pageRoutes } from './page-routes.ts';
import { invitePages } from './invite-pages.ts';
import { pageErrors } from './koa-page-errors.ts';
import { httpMetrics } from './koa-metrics.ts';
import { metricsRoutes } from './metrics-routes.ts';
import { forceHttps } from './koa-force-https.ts';
import { corsPolicy } from './koa-cors.ts';
import { clientVersion } from './koa-client-version.ts';
import { browserRateLimit, oauthRateLimit, rateLimitDepsOf } from './koa-rate-limit.ts';
import { clientCredentialsFastPath } from '../oidc/client-credentials-fast-path.ts';
import { introspectionFastPath } from '../oidc/introspection-fast-path.ts';
import { routesBySegment } from './route-dispatch.ts';
import { foreignResourceGuard, oauthBodyLimit, providerStoreOutage, staleSignInGuard, unsavedSessionGuard } from '../oidc/provider-edge.ts';
import { SERVICE_ACCOUNT_TOKEN_PATH } from '../oidc/service-account-tokens.ts';
import { apiAudienceOf } from '../config/load.ts';

export interface App {
  koa: Koa;
  providers: ProviderHolder;
}

/**
 * The whole HTTP surface in request order: edge middleware, our own routes, then the
 * provider (which owns /oauth/* and discovery), then a JSON 404.
 */
export function createApp(deps: Deps): App {
  // With TRUST_PROXY, the client IP is the X-Forwarded-For entry our own proxies wrote
  // (TRUST_PROXY_HOPS from the right), never one the client put there itself.
  const koa = new Koa({ proxy: deps.config.trustProxy, maxIpsCount: deps.config.trustProxyHops });
  // Same keys as the provider's cookies, or interactions fail with SessionNotFound.
  koa.keys = deps.secrets.cookieKeys;
  const providers = createProviderHolder(deps);

  const api = apiRoutes(deps, providers.current);
  const routers = [
    healthRoutes(deps),
    metricsRoutes({ metrics: deps.metrics, token: deps.config.metricsToken }),
    pageRoutes({ demoCallback: deps.config.demoClient }),
    invitePages(deps),
    userinfoRoutes(deps),
    api.router,
    enrolRoutes(deps),
  ];

  // Order: outermost first. Every response, errors included, gets its request id, log line,
  // metrics and security headers; errors are shaped in one place; then the edge refuses
  // early (plain HTTP, CORS preflight, old clients); the browser-facing requests count per
  // IP; then our routes (/v1 counts its rate limit in front of its router), then the
  // provider behind its own rate limit.
  // The gateway check's common case, answered whole before the generic middleware (it
  // hands anything else on untouched).
  if (deps.config.verifyFastPath) koa.use(api.verifyFastPath);
  koa.use(requestId());
  koa.use(requestLog(deps.logger));
  koa.use(httpMetrics(deps.metrics));
  koa.use(securityHeaders());
  koa.use(errorHandler(deps.logger, { oauthFormPaths: [SERVICE_ACCOUNT_TOKEN_PATH], clock: deps.clock }));
  koa.use(forceHttps({ enabled: deps.config.forceHttps, publicUrl: deps.config.publicUrl }));
  koa.use(corsPolicy(() => deps.settings.current().corsOrigins));
  koa.use(clientVersion({ minimum: deps.config.minClientVersion }));
  koa.use(pageErrors(deps.logger));
  koa.use(browserRateLimit(rateLimitDepsOf(deps)));
  koa.use(api.inFront);
  koa.use(routesBySegment([...routers, interactionRoutes(deps, providers.current)]));
  koa.use(oauthBodyLimit());
  koa.use(oauthRateLimit(rateLimitDepsOf(deps)));
  koa.use(providerStoreOutage());
  koa.use(unsavedSessionGuard());
  koa.use(staleSignInGuard(deps, providers.current));
  koa.use(foreignResourceGuard(apiAudienceOf(deps.config)));
  if (deps.config.tokenFastPath) {
    koa.use(clientCredentialsFastPath(deps, providers.current));
    koa.use(introspectionFastPath(deps, providers.current));
  }
  // Nothing answered (the provider passes on paths it does not own, and leaves a bare 404 on
  // its own paths for an OPTIONS that is no CORS preflight): a 404 in the error shape.
  koa.use(async (ctx, next) => {
    await next();
    if (ctx.body == null && ctx.status === 404) throw new AppError('NOT_FOUND');
  });
  koa.use(providers.middleware);
  koa.on('error', () => {
    // Errors are logged by errorHandler; this keeps Koa from printing stacks to stderr.
  });
  return { koa, providers };
}
