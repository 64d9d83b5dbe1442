import type { FindAccount } from 'oidc-provider';
import type { Deps } from '../deps.ts';

/** Looks users up for oidc-provider; a disabled or deleted user has no account. */
export function createFindAccount(deps: Pick<Deps, 'users'>): FindAccount {
  return async (_ctx, sub) => {
    const user = await deps.users.findById(sub);
    if (!user || user.disabled) return undefined;
    return {
      accountId: user.id,
      claims: async () => ({
        sub: user.id,
        email: user.email,
        email_verified: false,
        name: user.name || undefined,
        updated_at: Math.floor(Date.parse(user.updatedAt) / 1000),
      }),
    };
  };
}
