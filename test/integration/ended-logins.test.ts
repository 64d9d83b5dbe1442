import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AdapterPayload } from 'oidc-provider';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { createAccountSessions, grantKey, revokeGrant } from '../../src/oidc/account-sessions.ts';

// A request that loaded a login record before it was ended may save that copy again as it
// finishes: oidc-provider saves the browser session at the end of every request, and consent
// saves the grant. An ended login must stay ended all the same.
describe.each(['memory', 'redis'] as const)('an ended login stays ended when a copy loaded before is saved again (%s store)', (kind) => {
  let server: TestServer;
  let Adapter: ReturnType<typeof createAdapterFactory>;
  beforeAll(async () => {
    server = await startTestServer({ store: kind });
    const { store, clients, clock, secrets } = server.deps;
    Adapter = createAdapterFactory({ store, clients, clock, secrets });
  });
  afterAll(() => server?.close());

  const login = async () => {
    const accountId = `usr_${randomAlphanumeric(20)}`;
    const [grantId, sessionId] = [randomAlphanumeric(20), randomAlphanumeric(20)];
    const grants = new Adapter('Grant');
    const sessions = new Adapter('Session');
    await grants.upsert(grantId, { accountId, clientId: 'app', iat: 1, exp: 2 ** 31 } as AdapterPayload, 3600);
    await sessions.upsert(sessionId, { accountId, loginTs: 1, authorizations: { app: { grantId } } } as AdapterPayload, 3600);
    // What a request in flight holds.
    const heldSession = (await sessions.find(sessionId))!;
    const heldGrant = (await grants.find(grantId))!;
    expect(heldSession).toBeDefined();
    expect(heldGrant).toBeDefined();
    return { accountId, grantId, sessionId, grants, sessions, heldSession, heldGrant };
  };

  it('"revoke sessions" (disable, password reset): the session and the grant saved again stay gone', async () => {
    const { accountId, grantId, sessionId, grants, sessions, heldSession, heldGrant } = await login();
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 1, sessions: 1 });

    await sessions.upsert(sessionId, heldSession, 3600);
    await grants.upsert(grantId, heldGrant, 3600);
    expect(await sessions.find(sessionId), 'the session').toBeUndefined();
    expect(await server.deps.store.get(grantKey(grantId)), 'the grant (access tokens live while it does)').toBeNull();
    // And a later "revoke sessions" has nothing left to find.
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 0, sessions: 0 });
  });

  it('logout (the provider destroys the session) and a revoked grant (refresh-token reuse, /oauth/revoke) stay gone', async () => {
    const { grantId, sessionId, grants, sessions, heldSession, heldGrant } = await login();
    await sessions.destroy(sessionId);
    await revokeGrant(server.deps.store, grantId);

    await sessions.upsert(sessionId, heldSession, 3600);
    await grants.upsert(grantId, heldGrant, 3600);
    expect(await sessions.find(sessionId)).toBeUndefined();
    expect(await grants.find(grantId)).toBeUndefined();
  });

  it('a new login of the same account after that is saved as usual', async () => {
    const { accountId } = await login();
    await createAccountSessions({ store: server.deps.store }).revokeAll(accountId);
    const [grantId, sessionId] = [randomAlphanumeric(20), randomAlphanumeric(20)];
    await new Adapter('Grant').upsert(grantId, { accountId, clientId: 'app', iat: 3, exp: 2 ** 31 } as AdapterPayload, 3600);
    await new Adapter('Session').upsert(sessionId, { accountId, loginTs: 3 } as AdapterPayload, 3600);
    expect(await new Adapter('Grant').find(grantId)).toMatchObject({ accountId });
    expect(await new Adapter('Session').find(sessionId)).toMatchObject({ accountId });
    expect(await createAccountSessions({ store: server.deps.store }).revokeAll(accountId)).toEqual({ grants: 1, sessions: 1 });
  });
});
