import type { Clock } from '../clock.ts';
import { AppError, validationFailed } from '../errors/app-error.ts';
import { auditAdminChange, type AdminActor } from './admin-actor.ts';
import type { AuditLog } from './audit.ts';
import { defaultResponseTypes, metadataProblems, needsSecret, unknownScopes, type CreateClientInput, type UpdateClientInput } from './client-registration.ts';
import { generateClientSecret, type ClientMetadata, type ClientRepository } from './clients.ts';
import { randomAlphanumeric } from './ids.ts';
import { heldScopes, scopesNotGrantable } from './scope-grants.ts';
import { parseScope, type ScopeCatalog } from './scopes.ts';
import type { UserRepository } from './users.ts';

/** What the admin API shows of a client: its metadata without the secret hash, with its application_type (web when none is stored). */
export type ClientView = ClientMetadata & { client_secret?: never; application_type: string };

export const toClientView = ({ client_secret: _secret, ...rest }: ClientMetadata): ClientView =>
  ({ ...rest, application_type: typeof rest.application_type === 'string' ? rest.application_type : 'web' }) as ClientView;

export interface ClientAdminDeps {
  clients: ClientRepository;
  users: Pick<UserRepository, 'findById'>;
  audit: AuditLog;
  clock: Clock;
  scopeCatalog: ScopeCatalog;
  /** The provider's own metadata check (throws VALIDATION_FAILED). */
  validateMetadata: (metadata: ClientMetadata) => Promise<void>;
  /** Ids declared in the config file: re-written at every start, so not editable here. */
  configuredClientIds: readonly string[];
  /** The server's own clients (first-party login, service accounts): never editable. */
  builtInClientIds: readonly string[];
}

/** Thrown as 403 INSUFFICIENT_SCOPE with required_scope: the scopes the admin may not hand out. */
export class ScopeNotGrantableError extends Error {
  readonly scopes: string[];
  constructor(scopes: string[]) {
    super(`may not grant ${scopes.join(' ')}`);
    this.scopes = scopes;
  }
}

/**
 * OAuth client management for admins (API and CLI). Clients are read from the store on
 * every use, so a change here takes effect on every instance at once. A client secret
 * is generated here, returned once, and stored as a keyed hash.
 */
export function createClientAdmin(deps: ClientAdminDeps) {
  const { clients, users, audit, clock, scopeCatalog, validateMetadata } = deps;
  const configured = new Set(deps.configuredClientIds);
  const builtIn = new Set(deps.builtInClientIds);

  async function checkScope(scope: string | undefined, actor: AdminActor): Promise<void> {
    const unknown = unknownScopes(scope, scopeCatalog);
    if (unknown.length) throw validationFailed([{ field: 'scope', message: `unknown scope(s): ${unknown.join(', ')}` }]);
    const refused = scopesNotGrantable(await heldScopes(actor, users), parseScope(scope));
    if (refused.length) throw new ScopeNotGrantableError(refused);
  }

  /**
   * Changing a client, or giving it a new secret, is taking control of what it may do: only
   * for an admin who could have given it its scopes (as adding a service-account key needs
   * every scope of the account). Else an admin.settings admin could rotate the secret of a
   * client holding admin.users, or turn a public one confidential, and act with its scopes.
   * Deleting it too (its id can never be used again): an admin may not destroy what they
   * could not have made.
   */
  async function mustControl(scope: unknown, actor: AdminActor): Promise<void> {
    const refused = scopesNotGrantable(await heldScopes(actor, users), parseScope(typeof scope === 'string' ? scope : undefined));
    if (refused.length) throw new ScopeNotGrantableError(refused);
  }

  async function mustFind(id: string): Promise<ClientMetadata> {
    const client = await clients.find(id);
    if (!client) throw new AppError('NOT_FOUND', { message: 'Client not found' });
    return client;
  }

  function mustBeEditable(id: string): void {
    // A known secret or new grant on a built-in client would bypass the rules of its own endpoint.
    if (builtIn.has(id)) throw new AppError('CONFLICT', { message: 'This client is built into the server and cannot be changed' });
    if (configured.has(id)) throw new AppError('CONFLICT', { message: 'This client is declared in the config file; change it there' });
  }

  /**
   * Metadata as stored: response types follow the grant types unless given; keys only for
   * private_key_jwt; application_type always written (null or absent: web, the provider's default).
   */
  function normalise(metadata: ClientMetadata): ClientMetadata {
    const out: ClientMetadata = { ...metadata };
    out.response_types ??= defaultResponseTypes(metadata.grant_types);
    out.application_type ??= 'web';
    if (out.token_endpoint_auth_method !== 'private_key_jwt') {
      delete out.jwks;
      delete out.jwks_uri;
    }
    for (const [key, value] of Object.entries(out)) if (value === undefined || value === null) delete out[key];
    return out;
  }

  /** Validates with the provider, with a placeholder where the secret will be. */
  async function validate(metadata: ClientMetadata, hasSecret: boolean): Promise<void> {
    const problems = metadataProblems(metadata);
    if (problems.length) throw validationFailed(problems);
    await validateMetadata({ ...metadata, ...(hasSecret ? { client_secret: 'x'.repeat(64) } : {}) });
  }

  async function list(query: { cursor?: string; limit: number }): Promise<{ clients: ClientView[]; nextCursor: string | null }> {
    const ids = (await clients.listIds()).filter((id) => !query.cursor || id > query.cursor);
    const page = ids.slice(0, query.limit);
    const found = (await Promise.all(page.map((id) => clients.find(id)))).filter((c): c is ClientMetadata => c !== null);
    return { clients: found.map(toClientView), nextCursor: ids.length > query.limit ? page[page.length - 1] : null };
  }

  async function get(id: string): Promise<ClientView> {
    return toClientView(await mustFind(id));
  }

  async function create(input: CreateClientInput, actor: AdminActor): Promise<{ client: ClientView; clientSecret?: string }> {
    const clientId = input.client_id ?? `cl_${randomAlphanumeric(24)}`;
    mustBeEditable(clientId);
    const { client_id: _id, ...fields } = input;
    const metadata = normalise({
      ...fields,
      client_id: clientId,
      scope: input.scope ?? 'openid',
      client_id_issued_at: Math.floor(clock.now() / 1000),
    });
    await checkScope(metadata.scope as string, actor);
    const secret = needsSecret(input.token_endpoint_auth_method) ? generateClientSecret() : undefined;
    await validate(metadata, !!secret);
    const added = await clients.add(metadata, secret);
    if (added === 'taken') throw new AppError('CONFLICT', { message: 'A client with this id already exists' });
    if (added === 'retired') throw new AppError('CONFLICT', { message: 'A client with this id was deleted; its id is not given out again (its old logins and tokens would come back with it)' });
    await auditAdminChange(audit, actor, 'admin.client.created', clientId, {
      grant_types: metadata.grant_types,
      scope: metadata.scope as string,
      token_endpoint_auth_method: metadata.token_endpoint_auth_method,
    });
    return { client: toClientView(metadata), clientSecret: secret };
  }

  /**
   * Changes metadata. Moving to a secret-based auth method generates a secret (returned
   * once); moving away from one drops the stored secret.
   */
  async function update(id: string, change: UpdateClientInput, actor: AdminActor): Promise<{ client: ClientView; clientSecret?: string }> {
    mustBeEditable(id);
    await mustFind(id);
    if (change.scope !== undefined) await checkScope(change.scope, actor);
    // As this change found the client, and the secret it issued (on its last try, when another change raced it).
    let before!: ClientMetadata;
    let newSecret: string | undefined;
    const stored = await clients.update(id, async (current) => {
      before = current;
      await mustControl(current.scope, actor);
      const grantsChanged = change.grant_types !== undefined && change.response_types === undefined;
      const merged: ClientMetadata = { ...current, ...change, client_id: id };
      if (grantsChanged) delete merged.response_types;
      const metadata = normalise(merged);
      const method = String(metadata.token_endpoint_auth_method ?? 'client_secret_basic');
      newSecret = needsSecret(method) && !current.client_secret ? generateClientSecret() : undefined;
      if (!needsSecret(method)) delete metadata.client_secret;
      await validate({ ...metadata, client_secret: undefined }, needsSecret(method));
      return { metadata, clearSecret: newSecret };
    });
    if (!stored) throw new AppError('NOT_FOUND', { message: 'Client not found' });
    const fields = Object.keys(change).filter((k) => JSON.stringify(before[k]) !== JSON.stringify(stored[k]));
    await auditAdminChange(audit, actor, 'admin.client.updated', id, { fields, ...(newSecret ? { secretIssued: true } : {}) });
    return { client: toClientView(stored), clientSecret: newSecret };
  }

  /** A new secret, returned once; the old one stops working at once. */
  async function rotateSecret(id: string, actor: AdminActor): Promise<{ client: ClientView; clientSecret: string }> {
    mustBeEditable(id);
    const secret = generateClientSecret();
    const stored = await clients.update(id, async (current) => {
      await mustControl(current.scope, actor);
      if (!needsSecret(String(current.token_endpoint_auth_method ?? 'client_secret_basic'))) {
        throw new AppError('CONFLICT', { message: 'This client does not authenticate with a secret' });
      }
      return { metadata: current, clearSecret: secret };
    });
    if (!stored) throw new AppError('NOT_FOUND', { message: 'Client not found' });
    await auditAdminChange(audit, actor, 'admin.client.secret_rotated', id);
    return { client: toClientView(stored), clientSecret: secret };
  }

  async function remove(id: string, actor: AdminActor): Promise<void> {
    mustBeEditable(id);
    await mustControl((await mustFind(id)).scope, actor);
    await clients.remove(id);
    await auditAdminChange(audit, actor, 'admin.client.deleted', id);
  }

  return { list, get, create, update, rotateSecret, remove };
}

export type ClientAdmin = ReturnType<typeof createClientAdmin>;
