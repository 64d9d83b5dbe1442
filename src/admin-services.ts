import type { Deps } from './deps.ts';
import { createAuditQuery, type AuditQuery } from './domain/audit-query.ts';
import { createClientAdmin, type ClientAdmin } from './domain/client-admin.ts';
import { createInvites, type Invites } from './domain/invites.ts';
import { createPasswordSetup, type PasswordSetup } from './domain/password-setup.ts';
import { createUserAdmin, type UserAdmin } from './domain/user-admin.ts';
import { createServiceAccountAdmin, type ServiceAccountAdmin } from './domain/service-account-admin.ts';
import { SERVICE_ACCOUNT_TOKEN_PATH } from './oidc/service-account-tokens.ts';
import { createAccountSessions, type AccountSessions } from './oidc/account-sessions.ts';
import { createClientMetadataValidator } from './oidc/client-validator.ts';
import { FIRST_PARTY_CLIENT_ID } from './oidc/first-party-tokens.ts';
import { SERVICE_ACCOUNTS_CLIENT_ID } from './oidc/jwt-bearer-grant.ts';

export interface AdminServices {
  sessions: AccountSessions;
  invites: Invites;
  passwordSetup: PasswordSetup;
  userAdmin: UserAdmin;
  clientAdmin: ClientAdmin;
  auditQuery: AuditQuery;
  /** Service accounts: create (with an uploaded public key or a generated key file), scopes, disable, keys, delete. */
  serviceAccounts: ServiceAccountAdmin;
}

/**
 * The admin capabilities, built from the shared Deps: used by the /v1/admin routes and by
 * the command line alike, so both follow the same rules and write the same audit trail.
 */
export function createAdminServices(deps: Deps): AdminServices {
  const { store, secrets, users, passwords, audit, clock, scopeCatalog, config } = deps;
  const sessions = createAccountSessions({ store });
  const invites = createInvites({ store, secrets, ttlSeconds: config.inviteTtl });
  return {
    sessions,
    invites,
    passwordSetup: createPasswordSetup({ users, passwords, invites, audit }),
    userAdmin: createUserAdmin({
      users, passwords, invites, sessions, audit, scopeCatalog,
      revokeApiKeys: (userId, actor, facts) => deps.apiKeys.revokeAllForUser(userId, actor, facts),
    }),
    clientAdmin: createClientAdmin({
      clients: deps.clients, users, audit, clock, scopeCatalog,
      validateMetadata: createClientMetadataValidator(deps),
      configuredClientIds: config.clients.map((c) => c.client_id),
      builtInClientIds: [FIRST_PARTY_CLIENT_ID, SERVICE_ACCOUNTS_CLIENT_ID],
    }),
    auditQuery: createAuditQuery({ store }),
    serviceAccounts: createServiceAccountAdmin({
      accounts: deps.serviceAccounts, users, audit, clock, scopeCatalog,
      tokenUri: `${config.publicUrl}${SERVICE_ACCOUNT_TOKEN_PATH}`,
    }),
  };
}
