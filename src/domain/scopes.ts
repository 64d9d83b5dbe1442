import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';

/** Scope names and their human descriptions, from config/scopes.json. */
export type ScopeCatalog = Readonly<Record<string, string>>;

export function loadScopeCatalog(path = resolve(import.meta.dirname, '../../config/scopes.json')): ScopeCatalog {
  return Object.freeze(JSON.parse(readFileSync(path, 'utf8')) as Record<string, string>);
}

/** OpenID Connect scopes: they name claims, not API permissions. */
export const oidcScopes = ['openid', 'profile', 'email', 'offline_access'] as const;

export const apiScopesOf = (catalog: ScopeCatalog): string[] =>
  Object.keys(catalog).filter((s) => !(oidcScopes as readonly string[]).includes(s));

/** RFC 6749 §3.3: scope tokens of printable ASCII but `"` and `\`, separated by single spaces. */
export const SCOPE_SYNTAX = /^[\x21\x23-\x5B\x5D-\x7E]+(?: [\x21\x23-\x5B\x5D-\x7E]+)*$/;

export const parseScope = (scope: string | undefined | null): string[] =>
  (scope ?? '').split(' ').filter(Boolean);

export const isSubset = (wanted: readonly string[], held: readonly string[]): boolean => {
  const heldSet = new Set(held);
  return wanted.every((s) => heldSet.has(s));
};
