/** What the JWT customizer needs of a token's owner: the scopes it holds now. */
export interface TokenOwner {
  scopes: readonly string[];
}

const checkedOwners = new WeakMap<object, TokenOwner>();

/**
 * The account (a user or a service account) that code minting a token outside a provider
 * request has just read, remembered by the token about to be signed: the JWT customizer
 * (provider.ts) narrows the token's scopes to that read instead of reading the account
 * once more. Only a read that no change of the account can slip past will do: one made
 * after the token's grant was saved (service accounts), or together with a check that the
 * grant still exists, which every scope removal or disable deletes afterwards (first-party
 * refreshes).
 */
export function rememberCheckedOwner(token: object, owner: TokenOwner): void {
  checkedOwners.set(token, owner);
}

export const checkedOwnerOf = (token: object): TokenOwner | undefined => checkedOwners.get(token);
