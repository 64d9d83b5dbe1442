import compose from 'koa-compose';
import type { Middleware } from 'koa';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { buildProvider } from './provider.ts';
import { instrumentProvider } from './provider-edge.ts';

/**
 * Owns the current provider instance and rebuilds it when the signing keys change
 * (oidc-provider fixes its keystore at construction). Requests in flight finish on the
 * instance they started with.
 */
export function createProviderHolder(deps: Deps) {
  let provider: Provider;
  let run: Middleware;

  const build = () => {
    provider = buildProvider(deps);
    provider.on('server_error', (ctx: { state?: { requestId?: string } }, err: Error) =>
      deps.logger.error({ request_id: ctx?.state?.requestId, err: err.message, stack: err.stack }, 'provider server error'));
    instrumentProvider(provider, deps.metrics);
    run = compose(provider.middleware as Middleware[]);
  };
  build();
  deps.keyRing.onChange(() => {
    build();
    deps.logger.info({ keys: deps.keyRing.current().keys.map((k) => k.jwk.kid) }, 'signing keys changed; provider rebuilt');
  });

  return {
    current: (): Provider => provider,
    middleware: ((ctx, next) => run(ctx, next)) as Middleware,
  };
}

export type ProviderHolder = ReturnType<typeof createProviderHolder>;
