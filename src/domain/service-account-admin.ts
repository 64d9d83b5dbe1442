import type { Clock } from '../clock.ts';
import { AppError, validationFailed } from '../errors/app-error.ts';
import { auditAdminChange, type AdminActor } from './admin-actor.ts';
import type { AuditLog } from './audit.ts';
import { ScopeNotGrantableError } from './client-admin.ts';
import { newId } from './ids.ts';
import { heldScopes } from './scope-grants.ts';
import { apiScopesOf, type ScopeCatalog } from './scopes.ts';
import {
  generateServiceAccountKeyPair,
  KeyRejectedError,
  parsePublicKey,
  type ParsedPublicKey,
  type ServiceAccountAlg,
} from './service-account-keys.ts';
import type { ServiceAccount, ServiceAccountKey, ServiceAccountRepository } from './service-accounts.ts';
import type { UserRepository } from './users.ts';

/** The JSON key file handed out once when the server makes the key pair (like other clouds' key files). */
export interface ServiceAccountKeyFile {
  type: 'service_account';
  account_id: string;
  key_id: string;
  private_key: string;
  token_uri: string;
}

export interface KeyInput {
  /** PEM or JWK; absent: the server makes a pair and returns the private key once. */
  publicKey?: unknown;
  /** RSA keys: RS256 (default) or PS256. Generated pairs: their algorithm (default RS256). */
  alg?: ServiceAccountAlg;
}

export const toKeyView = (key: ServiceAccountKey) => ({
  kid: key.kid,
  alg: key.alg,
  status: key.status,
  publicJwk: key.publicJwk,
  createdAt: key.createdAt,
  ...(key.retiredAt ? { retiredAt: key.retiredAt } : {}),
});

/** What admins see; all of it public (accounts hold public keys only). */
export const toServiceAccountView = (account: ServiceAccount) => ({
  id: account.id,
  name: account.name,
  scopes: account.scopes,
  disabled: account.disabled,
  keys: account.keys.map(toKeyView),
  createdAt: account.createdAt,
  updatedAt: account.updatedAt,
  createdBy: account.createdBy,
});

export type ServiceAccountView = ReturnType<typeof toServiceAccountView>;

const MAX_ACTIVE_KEYS = 10;
const MAX_RETIRED_KEYS = 20;

/**
 * Service-account management for admins (API and CLI alike). The rules: an account
 * never gets a scope its creator does not hold, and nobody can take control of an
 * account (add a key, re-enable it) without holding every scope it has. Disabling,
 * deleting or cutting scopes revokes the tokens already issued, at once.
 */
export function createServiceAccountAdmin(deps: {
  accounts: ServiceAccountRepository;
  users: Pick<UserRepository, 'findById'>;
  audit: AuditLog;
  clock: Clock;
  scopeCatalog: ScopeCatalog;
  /** Where holders of a key file exchange assertions for tokens. */
  tokenUri: string;
}) {
  const { accounts, users, audit, clock, tokenUri } = deps;
  const apiScopes = new Set(apiScopesOf(deps.scopeCatalog));
  const nowIso = () => new Date(clock.now()).toISOString();

  function knownScopes(scopes: readonly string[]): string[] {
    const unique = [...new Set(scopes)];
    const unknown = unique.filter((s) => !apiScopes.has(s));
    if (unknown.length) throw validationFailed([{ field: 'scopes', message: `unknown scope(s): ${unknown.join(', ')}` }]);
    return unique;
  }

  /**
   * Refuses unless the actor holds every one of `scopes` (strictly: no scope grants all
   * here). A scope the catalog no longer lists grants nothing, and nobody could hold it.
   */
  async function mustHold(actor: AdminActor, scopes: readonly string[]): Promise<void> {
    const held = new Set(await heldScopes(actor, users));
    const missing = scopes.filter((s) => apiScopes.has(s) && !held.has(s));
    if (missing.length) throw new ScopeNotGrantableError(missing);
  }

  async function mustFind(id: string): Promise<ServiceAccount> {
    const account = await accounts.get(id);
    if (!account) throw new AppError('NOT_FOUND', { message: 'Service account not found' });
    return account;
  }

  /** Reads the uploaded key, or makes a pair (the private half is returned, never stored). */
  async function readOrMakeKey(input: KeyInput): Promise<{ parsed: ParsedPublicKey; privateKeyPem?: string }> {
    try {
      if (input.publicKey !== undefined) return { parsed: await parsePublicKey(input.publicKey, input.alg) };
      const { key, privateKeyPem } = await generateServiceAccountKeyPair(input.alg);
      return { parsed: key, privateKeyPem };
    } catch (err) {
      if (err instanceof KeyRejectedError) throw validationFailed([{ field: 'publicKey', message: err.message }], 'The key was refused');
      throw err;
    }
  }

  async function claim(accountId: string, parsed: ParsedPublicKey): Promise<void> {
    if (!(await accounts.claimKey(accountId, parsed.thumbprint))) {
      throw new AppError('CONFLICT', { message: 'This public key is already registered to a service account' });
    }
  }

  const newKey = (parsed: ParsedPublicKey): ServiceAccountKey => ({
    kid: parsed.kid,
    alg: parsed.alg,
    publicJwk: parsed.publicJwk,
    thumbprint: parsed.thumbprint,
    status: 'active',
    createdAt: nowIso(),
  });

  const keyFileFor = (accountId: string, kid: string, privateKeyPem: string | undefined): ServiceAccountKeyFile | undefined =>
    privateKeyPem ? { type: 'service_account', account_id: accountId, key_id: kid, private_key: privateKeyPem, token_uri: tokenUri } : undefined;

  const list = async (): Promise<ServiceAccountView[]> => (await accounts.list()).map(toServiceAccountView);

  const get = async (id: string): Promise<ServiceAccountView> => toServiceAccountView(await mustFind(id));

  /**
   * Creates an account with one key: the uploaded public key, or a new pair whose private
   * half comes back once in `keyFile` (never stored). The CLI calls this with
   * `cliActor(...)` and no publicKey to hand out a key file.
   */
  async function create(input: { name: string; scopes: string[] } & KeyInput, actor: AdminActor): Promise<{ account: ServiceAccountView; keyFile?: ServiceAccountKeyFile }> {
    const scopes = knownScopes(input.scopes);
    await mustHold(actor, scopes);
    const { parsed, privateKeyPem } = await readOrMakeKey(input);
    const id = newId('sa');
    await claim(id, parsed);
    const now = nowIso();
    const account: ServiceAccount = {
      id, name: input.name, scopes, keys: [newKey(parsed)], disabled: false, createdAt: now, updatedAt: now, createdBy: actor.subject,
    };
    await accounts.save(account);
    await auditAdminChange(audit, actor, 'admin.serviceaccount.created', id, { name: account.name, scopes, kid: parsed.kid, alg: parsed.alg, keyGenerated: !!privateKeyPem });
    return { account: toServiceAccountView(account), keyFile: keyFileFor(id, parsed.kid, privateKeyPem) };
  }

  /** Changes the account `id` by `change`, run on its latest record; NOT_FOUND when it does not exist (or was deleted meanwhile). */
  async function changeAccount(id: string, change: (account: ServiceAccount) => ServiceAccount | Promise<ServiceAccount>): Promise<ServiceAccount> {
    const next = await accounts.update(id, change);
    if (!next) throw new AppError('NOT_FOUND', { message: 'Service account not found' });
    return next;
  }

  /**
   * Name, scopes, disabled. Disabling or taking a scope away revokes the tokens already
   * issued. Any admin may take power away (disable, cut scopes: an admin who holds the
   * scopes can give them back); giving it, or giving it back, needs every scope involved.
   */
  async function update(id: string, change: { name?: string; scopes?: string[]; disabled?: boolean }, actor: AdminActor): Promise<ServiceAccountView> {
    const requested = change.scopes ? knownScopes(change.scopes) : undefined;
    // The account as this change found it (on its last try, when another change raced it).
    let before!: ServiceAccount;
    const next = await changeAccount(id, async (account) => {
      before = account;
      const scopes = requested ?? account.scopes;
      if (requested) await mustHold(actor, scopes);
      const disabled = change.disabled ?? account.disabled;
      // Re-enabling hands the account's power back to its key holders.
      if (account.disabled && !disabled) await mustHold(actor, scopes);
      return { ...account, name: change.name ?? account.name, scopes, disabled, updatedAt: nowIso() };
    });
    const cut = before.scopes.filter((s) => !next.scopes.includes(s));
    // Asked to disable: revoke even when it already was disabled (a retry repairs a first
    // attempt that stopped between the write and the revocation).
    const revoked = (next.disabled && change.disabled === true) || cut.length > 0;
    if (revoked) await accounts.revokeTokens(id);
    await auditAdminChange(audit, actor, 'admin.serviceaccount.updated', id, {
      changed: Object.keys(change).filter((k) => change[k as keyof typeof change] !== undefined),
      scopes: next.scopes, disabled: next.disabled, tokensRevoked: revoked,
    });
    return toServiceAccountView(next);
  }

  /** Adds a key beside the others: rotate by adding the new key, moving clients over, then retiring the old one. */
  async function addKey(id: string, input: KeyInput, actor: AdminActor): Promise<{ key: ReturnType<typeof toKeyView>; keyFile?: ServiceAccountKeyFile }> {
    // A new key is the power to act as the account: only for someone holding all of it.
    const mayAdd = async (account: ServiceAccount, parsed?: ParsedPublicKey) => {
      await mustHold(actor, account.scopes);
      if (account.keys.filter((k) => k.status === 'active').length >= MAX_ACTIVE_KEYS) {
        throw new AppError('CONFLICT', { message: `A service account may have at most ${MAX_ACTIVE_KEYS} active keys; retire one first` });
      }
      if (!parsed) return;
      if (account.keys.some((k) => k.thumbprint === parsed.thumbprint)) throw new AppError('CONFLICT', { message: 'This key is already registered to the service account' });
      if (account.keys.some((k) => k.kid === parsed.kid)) throw new AppError('CONFLICT', { message: 'The service account already has a key with this kid' });
    };
    // Checked before the key is made (a new RSA pair takes a while), and again on the record it joins.
    await mayAdd(await mustFind(id));
    const { parsed, privateKeyPem } = await readOrMakeKey(input);
    await mayAdd(await mustFind(id), parsed);
    await claim(id, parsed);
    const key = newKey(parsed);
    await changeAccount(id, async (account) => {
      await mayAdd(account, parsed);
      return { ...account, keys: [...account.keys, key], updatedAt: nowIso() };
    });
    await auditAdminChange(audit, actor, 'admin.serviceaccount.key_added', id, { kid: key.kid, alg: key.alg, keyGenerated: !!privateKeyPem });
    return { key: toKeyView(key), keyFile: keyFileFor(id, key.kid, privateKeyPem) };
  }

  /**
   * Retires a key: assertions it signs are refused from now on; tokens it already obtained
   * run out on their own. There is no way back, so (like deleting the account) it is for an
   * admin holding every scope of the account: one may not destroy what one could not make.
   */
  async function retireKey(id: string, kid: string, actor: AdminActor): Promise<ServiceAccountView> {
    let dropped: ServiceAccountKey[] = [];
    let retiredNow = false;
    const next = await changeAccount(id, async (account) => {
      await mustHold(actor, account.scopes);
      const key = account.keys.find((k) => k.kid === kid);
      if (!key) throw new AppError('NOT_FOUND', { message: 'Key not found' });
      retiredNow = key.status !== 'retired';
      dropped = [];
      if (!retiredNow) return account;
      const now = nowIso();
      let keys = account.keys.map((k) => (k.kid === kid ? { ...k, status: 'retired' as const, retiredAt: now } : k));
      // Only the most recent retired keys are kept on record.
      const retired = keys.filter((k) => k.status === 'retired');
      dropped = retired.slice(0, Math.max(0, retired.length - MAX_RETIRED_KEYS));
      keys = keys.filter((k) => !dropped.includes(k));
      return { ...account, keys, updatedAt: now };
    });
    if (!retiredNow) return toServiceAccountView(next);
    await accounts.releaseKeys(dropped.map((k) => k.thumbprint));
    await auditAdminChange(audit, actor, 'admin.serviceaccount.key_retired', id, { kid });
    return toServiceAccountView(next);
  }

  /** Deletes the account and revokes every token it holds. */
  async function remove(id: string, actor: AdminActor): Promise<void> {
    const account = await mustFind(id);
    await mustHold(actor, account.scopes);
    await accounts.remove(account);
    await auditAdminChange(audit, actor, 'admin.serviceaccount.deleted', id, { name: account.name });
  }

  return { list, get, create, update, addKey, retireKey, remove };
}

export type ServiceAccountAdmin = ReturnType<typeof createServiceAccountAdmin>;
