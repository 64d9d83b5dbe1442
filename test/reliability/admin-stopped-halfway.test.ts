import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterPayload } from 'oidc-provider';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { cliActor } from '../../src/domain/admin-actor.ts';
import { apiScopesOf } from '../../src/domain/scopes.ts';
import { createAdminServices } from '../../src/admin-services.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { grantKey } from '../../src/oidc/account-sessions.ts';
import { createServiceAccountRepository } from '../../src/domain/service-accounts.ts';
import { createServiceAccountAdmin } from '../../src/domain/service-account-admin.ts';
import type { Store } from '../../src/store/store.ts';

// An admin change writes the record, then ends what the change takes away. When the first
// attempt stops in between (the process dies, Redis drops the connection), the admin sees
// an error and tries again: the retry must finish the job, not find "nothing changed".
describe('an admin change that stopped halfway is finished by its retry', () => {
  let server: TestServer;
  let Adapter: ReturnType<typeof createAdapterFactory>;
  beforeAll(async () => {
    server = await startTestServer();
    const { store, clients, clock, secrets } = server.deps;
    Adapter = createAdapterFactory({ store, clients, clock, secrets });
  });
  afterAll(() => server?.close());

  /** A stored login (grant) of `accountId`: what "end everything" must remove. */
  const liveLogin = async (accountId: string) => {
    const grantId = randomAlphanumeric(20);
    await new Adapter('Grant').upsert(grantId, { accountId, clientId: 'app', iat: 1, exp: 2 ** 31 } as AdapterPayload, 3600);
    return grantId;
  };
  const actor = () => cliActor(apiScopesOf(server.deps.scopeCatalog));

  it('disabling a user: the retry ends the logins a first attempt left (already disabled)', async () => {
    const { userAdmin } = createAdminServices(server.deps);
    const user = await server.deps.users.create({ email: `half-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', scopes: ['cmdb.read'] });
    const grantId = await liveLogin(user.id);
    // The first attempt's write landed; it stopped before the revocation.
    await server.deps.users.update(user.id, (u) => ({ ...u, disabled: true }));
    expect(await server.deps.store.get(grantKey(grantId))).not.toBeNull();

    await userAdmin.update(user.id, { disabled: true }, actor());
    expect(await server.deps.store.get(grantKey(grantId))).toBeNull();
  });

  it('taking a scope away: the retry ends the logins a first attempt left (the scope already gone)', async () => {
    const user = await server.deps.users.create({ email: `half-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', scopes: ['cmdb.read', 'cmdb.write'] });
    const grantId = await liveLogin(user.id);
    // The first attempt's write landed (with its "logins to end" mark); it stopped before the revocation.
    const failing: Store = {
      ...server.deps.store,
      del: async (keys) => {
        if (keys.some((k) => k.includes(grantId))) throw new Error('connection lost');
        return server.deps.store.del(keys);
      },
    };
    const { userAdmin: stopping } = createAdminServices({ ...server.deps, store: failing });
    await expect(stopping.update(user.id, { scopes: ['cmdb.read'] }, actor())).rejects.toThrow();
    expect((await server.deps.users.findById(user.id))?.scopes).toEqual(['cmdb.read']);
    expect(await server.deps.store.get(grantKey(grantId))).not.toBeNull();

    const { userAdmin } = createAdminServices(server.deps);
    const view = await userAdmin.update(user.id, { scopes: ['cmdb.read'] }, actor());
    expect(await server.deps.store.get(grantKey(grantId))).toBeNull();
    expect(view).not.toHaveProperty('loginsToEnd');
    // Done: the mark is gone, and a later change that takes nothing away ends nothing.
    expect((await server.deps.users.findById(user.id))?.loginsToEnd).toBeUndefined();
    const later = await liveLogin(user.id);
    await userAdmin.update(user.id, { name: 'Renamed' }, actor());
    expect(await server.deps.store.get(grantKey(later))).not.toBeNull();
  });

  it('disabling a service account: the retry revokes its tokens', async () => {
    const { serviceAccounts } = createAdminServices(server.deps);
    const { account } = await serviceAccounts.create({ name: 'half', scopes: ['cmdb.read'], alg: 'ES256' }, actor());
    const grantId = await liveLogin(account.id);
    await server.deps.serviceAccounts.update(account.id, (a) => ({ ...a, disabled: true }));

    await serviceAccounts.update(account.id, { disabled: true }, actor());
    expect(await server.deps.store.get(grantKey(grantId))).toBeNull();
  });

  it('deleting a service account revokes its tokens before the record goes', async () => {
    // The delete stops at the record itself.
    const failing: Store = {
      ...server.deps.store,
      del: async (keys) => {
        if (keys.some((k) => k.startsWith('service-account:'))) throw new Error('connection lost');
        return server.deps.store.del(keys);
      },
    };
    const accounts = createServiceAccountRepository({ store: failing, revokeTokens: server.deps.serviceAccounts.revokeTokens });
    const admin = createServiceAccountAdmin({
      accounts, users: server.deps.users, audit: server.deps.audit, clock: server.deps.clock, scopeCatalog: server.deps.scopeCatalog, tokenUri: 'http://localhost/token',
    });
    const { account } = await admin.create({ name: 'half', scopes: ['cmdb.read'], alg: 'ES256' }, actor());
    const grantId = await liveLogin(account.id);

    await expect(admin.remove(account.id, actor())).rejects.toThrow('connection lost');
    expect(await server.deps.store.get(grantKey(grantId)), 'no live token behind a half-done delete').toBeNull();
  });
});
