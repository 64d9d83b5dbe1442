import type { FindAccount } from 'oidc-provider';
import type { Deps } from '../deps.ts';
import type { User } from '../domain/users.ts';

/** A user lookup that may take the request it serves (to remember the answer for it). */
export type UserLookup = (request: object | undefined, id: string) => Promise<User | null>;

/** Looks users up for oidc-provider; a disabled or deleted user has no account. */
export function createFindAccount(deps: Pick<Deps, 'users'>, lookup: UserLookup = (_request, id) => deps.users.findById(id)): FindAccount {
  return async (ctx, sub) => {
    const user = await lookup(ctx, sub);
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
