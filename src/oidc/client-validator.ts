import type Provider from 'oidc-provider';
import { errors as oidcErrors, type ClientMetadata as ProviderClientMetadata } from 'oidc-provider';
import type { Deps } from '../deps.ts';
import type { ClientMetadata } from '../domain/clients.ts';
import { validationFailed } from '../errors/app-error.ts';
import { buildProvider } from './provider.ts';

/** Checks client metadata the way the provider will when the client is first used. */
export type ClientMetadataValidator = (metadata: ClientMetadata) => Promise<void>;

// One validation provider per set of dependencies, built on first use: start-up (the config
// file's clients) and the admin API share it.
const validationProviders = new WeakMap<Deps, Provider>();
function validationProviderOf(deps: Deps): Provider {
  let provider = validationProviders.get(deps);
  if (!provider) {
    provider = buildProvider(deps);
    validationProviders.set(deps, provider);
  }
  return provider;
}

/**
 * Clients are validated lazily by oidc-provider, on first use; an admin should hear about
 * a bad one when creating it. This runs the provider's own validation (grant and response
 * type consistency, auth methods, keys) on a provider built from the same configuration,
 * so custom grants registered there are accepted too.
 */
export function createClientMetadataValidator(deps: Deps): ClientMetadataValidator {
  return async (metadata) => {
    const provider = validationProviderOf(deps);
    try {
      await provider.Client.validate(metadata as ProviderClientMetadata);
    } catch (err) {
      if (err instanceof oidcErrors.InvalidClientMetadata || err instanceof oidcErrors.InvalidRedirectUri) {
        const description = (err as { error_description?: string }).error_description ?? 'invalid client metadata';
        const field = /^(\w+)/.exec(description)?.[1] ?? 'body';
        throw validationFailed([{ field, message: description }]);
      }
      throw err;
    }
  };
}
