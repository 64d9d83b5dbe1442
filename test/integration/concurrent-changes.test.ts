import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { cliActor } from '../../src/domain/admin-actor.ts';
import { apiScopesOf } from '../../src/domain/scopes.ts';
import { createServiceAccountAdmin } from '../../src/domain/service-account-admin.ts';
import { createServiceAccountRepository } from '../../src/domain/service-accounts.ts';
import { createClientRepository } from '../../src/domain/clients.ts';
import { createClientAdmin } from '../../src/domain/client-admin.ts';
import { createClientMetadataValidator } from '../../src/oidc/client-validator.ts';
import { createMfaService } from '../../src/domain/mfa.ts';
import { createRecoveryCodes } from '../../src/domain/recovery-codes.ts';
import { createTotp } from '../../src/domain/totp.ts';
import { totpAt } from '../support/auth-client.ts';
import { createApiKeyService } from '../../src/domain/api-keys.ts';
import { createUserRepository, EmailTakenError } from '../../src/domain/users.ts';
import { createLogger } from '../../src/logger.ts';
import { createInvites } from '../../src/domain/invites.ts';
import type { Store } from '../../src/store/store.ts';

/**
 * A store whose next read of a key matching `pattern` hands its value back only once the
 * test lets it: the reader then holds a record someone else changes meanwhile, the
 * read-modify-write race every record update must survive.
 */
function storeHoldingOneRead(store: Store) {
  let held: { pattern: RegExp; read: () => void; release: Promise<void> } | undefined;
  const wrapped: Store = {
    ...store,
    async get(key) {
      const value = await store.get(key);
      if (held && held.pattern.test(key)) {
        const { read, release } = held;
        held = undefined;
        read();
        await release;
      }
      return value;
    },
  };
  /** Holds the next matching read; resolves `readDone` once it has read, and returns it when `release` is called. */
  const holdNextRead = (pattern: RegExp) => {
    let read!: () => void;
    let release!: () => void;
    const readDone = new Promise<void>((resolve) => { read = resolve; });
    held = { pattern, read, release: new Promise<void>((resolve) => { release = resolve; }) };
    return { readDone, release: () => release() };
  };
  return { store: wrapped, holdNextRead };
}

describe.each(['memory', 'redis'] as const)('concurrent changes to one record are all kept (%s store)', (kind) => {
  let server: TestServer;
  beforeAll(async () => {
    server = await startTestServer({ store: kind });
  });
  afterAll(() => server?.close());

  it('compareAndSet writes only over the value it was given, and keeps the expiry', async () => {
    const { store } = server.deps;
    const key = `cas:${randomAlphanumeric(8)}`;
    expect(await store.compareAndSet(key, 'a', 'b'), 'a missing key').toBe(false);
    expect(await store.get(key)).toBeNull();
    await store.set(key, 'a', { ttlMs: 60_000 });
    expect(await store.compareAndSet(key, 'x', 'b'), 'another value').toBe(false);
    expect(await store.get(key)).toBe('a');
    expect(await store.compareAndSet(key, 'a', 'b')).toBe(true);
    expect(await store.get(key)).toBe('b');
    const ttl = await store.ttl(key);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(60_000);
  });

  it('deleteIfEquals deletes only the value it was given', async () => {
    const { store } = server.deps;
    const key = `cad:${randomAlphanumeric(8)}`;
    expect(await store.deleteIfEquals(key, 'a'), 'a missing key').toBe(false);
    await store.set(key, 'a');
    expect(await store.deleteIfEquals(key, 'x'), 'another value').toBe(false);
    expect(await store.get(key)).toBe('a');
    expect(await store.deleteIfEquals(key, 'a')).toBe(true);
    expect(await store.get(key)).toBeNull();
  });

  it('raiseTo pushes a deadline back with its new expiry, and never brings it forward', async () => {
    const { store } = server.deps;
    const key = `raise:${randomAlphanumeric(8)}`;
    expect(await store.raiseTo(key, 1_000, 60_000)).toBe(true);
    expect(await store.raiseTo(key, 500, 1_000), 'a lower value').toBe(false);
    expect(await store.get(key)).toBe('1000');
    expect(await store.ttl(key)).toBeGreaterThan(1_000);
    expect(await store.raiseTo(key, 2_000, 120_000)).toBe(true);
    expect(await store.get(key)).toBe('2000');
    expect(await store.ttl(key)).toBeGreaterThan(60_000);
  });

  it('users: a disable and a rename at the same time both land; an update after a delete brings nothing back', async () => {
    const { users } = server.deps;
    const user = await users.create({ email: `cc-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', scopes: ['cmdb.read'] });
    const [disabled, renamed] = await Promise.all([
      users.update(user.id, async (u) => ({ ...u, disabled: true })),
      users.update(user.id, async (u) => ({ ...u, name: 'Renamed' })),
    ]);
    expect(disabled?.disabled).toBe(true);
    expect(renamed?.name).toBe('Renamed');
    const stored = await users.findById(user.id);
    expect({ disabled: stored?.disabled, name: stored?.name }).toEqual({ disabled: true, name: 'Renamed' });

    const [, afterDelete] = await Promise.all([users.remove(user.id), users.update(user.id, async (u) => ({ ...u, name: 'Zombie' }))]);
    expect(afterDelete).toBeNull();
    expect(await users.findById(user.id)).toBeNull();
  });

  it('users: two creates with one email: one is refused and leaves nothing behind', async () => {
    const { users } = server.deps;
    const email = `twice-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    const results = await Promise.allSettled([1, 2].map(() => users.create({ email, password: 'Some-Password-123!', scopes: [] })));
    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect([created.length, refused.length]).toEqual([1, 1]);
    expect(refused[0].reason).toBeInstanceOf(EmailTakenError);
    const winner = (created[0] as PromiseFulfilledResult<{ id: string }>).value;
    expect((await users.findByEmail(email))?.id).toBe(winner.id);
    const withEmail = (await users.findMany(await users.listIds())).filter((u) => u.email === email);
    expect(withEmail.map((u) => u.id)).toEqual([winner.id]);
  });

  it('users: a create that stopped halfway leaves its email free, and an email claimed by a user that is gone is taken over', async () => {
    const { store, clock, passwords } = server.deps;
    const email = `half-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    const stopping: Store = { ...store, setAdd: async () => { throw new Error('connection lost'); } };
    await expect(createUserRepository({ store: stopping, clock, passwords }).create({ email, password: 'Some-Password-123!', scopes: [] })).rejects.toThrow('connection lost');
    const users = createUserRepository({ store, clock, passwords });
    expect((await users.create({ email, password: 'Some-Password-123!', scopes: [] })).email).toBe(email);

    // What a crash between the claim and the record left behind before.
    const orphan = `orphan-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    await store.set(`user-email:${orphan}`, 'usr_gone');
    const user = await users.create({ email: orphan, password: 'Some-Password-123!', scopes: [] });
    expect((await users.findByEmail(orphan))?.id).toBe(user.id);
  });

  it('users: a create whose claim of the email fails leaves no record behind, and deleting a stray record never frees another user\'s email', async () => {
    const { store, clock, passwords } = server.deps;
    const users = createUserRepository({ store, clock, passwords });
    const email = `claim-${randomAlphanumeric(6).toLowerCase()}@example.test`;
    const failingClaim: Store = { ...store, set: async (key, value, options) => {
      if (key.startsWith('user-email:')) throw new Error('connection lost');
      return store.set(key, value, options);
    } };
    const before = await users.listIds();
    await expect(createUserRepository({ store: failingClaim, clock, passwords }).create({ email, password: 'Some-Password-123!', scopes: [] })).rejects.toThrow('connection lost');
    expect(await users.listIds()).toEqual(before);

    // A stray record with a user's email (what an older version's stopped create left): deleting it leaves the user as is.
    const real = await users.create({ email, password: 'Some-Password-123!', scopes: [] });
    const stray = { ...real, id: `usr_${randomAlphanumeric(20)}` };
    await store.set(`user:${stray.id}`, JSON.stringify(stray));
    await store.setAdd('users', [stray.id]);
    expect(await users.remove(stray.id)).toBe(true);
    expect((await users.findByEmail(email))?.id).toBe(real.id);
    expect(await users.verifyPassword(email, 'Some-Password-123!')).toMatchObject({ id: real.id });
  });

  it('service accounts: a key retired while another key is being added stays retired', async () => {
    const { store, holdNextRead } = storeHoldingOneRead(server.deps.store);
    const accounts = createServiceAccountRepository({ store, revokeTokens: server.deps.serviceAccounts.revokeTokens });
    const admin = createServiceAccountAdmin({
      accounts, users: server.deps.users, audit: server.deps.audit, clock: server.deps.clock, scopeCatalog: server.deps.scopeCatalog, tokenUri: 'http://localhost/token',
    });
    const actor = cliActor(apiScopesOf(server.deps.scopeCatalog));
    const { account } = await admin.create({ name: 'cc', scopes: ['cmdb.read'], alg: 'ES256' }, actor);
    const leaked = account.keys[0].kid;

    // The add reads the account, and is held there while the leaked key is retired.
    const { readDone, release } = holdNextRead(/sa_/);
    const adding = admin.addKey(account.id, { alg: 'ES256' }, actor);
    await readDone;
    await admin.retireKey(account.id, leaked, actor);
    release();
    const { key: added } = await adding;

    const after = await admin.get(account.id);
    const status = Object.fromEntries(after.keys.map((k) => [k.kid, k.status]));
    expect(status).toEqual({ [leaked]: 'retired', [added.kid]: 'active' });
  });

  it('clients: a secret rotated while the client is being edited stays the only secret', async () => {
    const { store, holdNextRead } = storeHoldingOneRead(server.deps.store);
    const clients = createClientRepository({ store, secrets: server.deps.secrets });
    const admin = createClientAdmin({
      clients, users: server.deps.users, audit: server.deps.audit, clock: server.deps.clock, scopeCatalog: server.deps.scopeCatalog,
      validateMetadata: createClientMetadataValidator(server.deps), configuredClientIds: [], builtInClientIds: [],
    });
    const actor = cliActor(apiScopesOf(server.deps.scopeCatalog));
    const { client, clientSecret: first } = await admin.create({
      client_name: 'cc', redirect_uris: ['https://app.example.test/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic',
    } as never, actor);

    // The edit reads the client (with the first secret's hash), and is held there while the secret is rotated.
    const { readDone, release } = holdNextRead(new RegExp(`client:${client.client_id}$`));
    const editing = admin.update(client.client_id, { client_name: 'edited' } as never, actor);
    await readDone;
    const { clientSecret: second } = await admin.rotateSecret(client.client_id, actor);
    release();
    await editing;

    const stored = await server.deps.clients.find(client.client_id);
    expect(stored?.client_name).toBe('edited');
    expect(server.deps.clients.secretMatches(second, stored?.client_secret), 'the rotated secret works').toBe(true);
    expect(server.deps.clients.secretMatches(first!, stored?.client_secret), 'the old secret stays dead').toBe(false);
  });

  it('clients: two creates of one client id: one is refused, and the first one\'s secret keeps working', async () => {
    const admin = createClientAdmin({
      clients: server.deps.clients, users: server.deps.users, audit: server.deps.audit, clock: server.deps.clock, scopeCatalog: server.deps.scopeCatalog,
      validateMetadata: createClientMetadataValidator(server.deps), configuredClientIds: [], builtInClientIds: [],
    });
    const actor = cliActor(apiScopesOf(server.deps.scopeCatalog));
    const clientId = `cc-${randomAlphanumeric(8)}`;
    const input = { client_id: clientId, redirect_uris: ['https://app.example.test/cb'], grant_types: ['authorization_code'], token_endpoint_auth_method: 'client_secret_basic' } as never;
    const results = await Promise.allSettled([admin.create(input, actor), admin.create(input, actor)]);
    const created = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(created).toHaveLength(1);
    expect(refused).toHaveLength(1);
    expect(refused[0].reason).toMatchObject({ code: 'CONFLICT' });
    const { clientSecret } = (created[0] as PromiseFulfilledResult<{ clientSecret?: string }>).value;
    const stored = await server.deps.clients.find(clientId);
    expect(server.deps.clients.secretMatches(clientSecret!, stored?.client_secret)).toBe(true);
  });

  it('MFA: of two enrolments confirmed at the same time, the one that finishes second is refused and the first stays', async () => {
    const { store, clock, users } = server.deps;
    const codes = createRecoveryCodes({ store, passwords: server.deps.passwords, secrets: server.deps.secrets });
    // The first confirmation is held once its recovery codes are made (the slow part), just before it is saved.
    let held: { reached: () => void; release: Promise<void> } | undefined;
    const mfa = createMfaService({
      store, users, secrets: server.deps.secrets, totp: createTotp({ store, clock }), audit: server.deps.audit,
      recoveryCodes: {
        ...codes,
        async generate() {
          const made = await codes.generate();
          const gate = held;
          held = undefined;
          if (gate) {
            gate.reached();
            await gate.release;
          }
          return made;
        },
      },
    });
    const user = await users.create({ email: `mfa-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', scopes: ['cmdb.read'] });
    let reached!: () => void;
    let release!: () => void;
    const codesMade = new Promise<void>((resolve) => { reached = resolve; });
    held = { reached, release: new Promise<void>((resolve) => { release = resolve; }) };

    const first = await mfa.beginSetup(user);
    const confirmingFirst = mfa.confirmSetup(user, totpAt(first.secret, clock.now()), {});
    await codesMade;
    // A second enrolment (another device, or someone else holding the password) starts and finishes meanwhile.
    server.clock.advance(30_000);
    const second = await mfa.beginSetup(user);
    expect(await mfa.confirmSetup(user, totpAt(second.secret, clock.now()), {})).toHaveLength(10);
    release();
    await expect(confirmingFirst).rejects.toMatchObject({ code: 'CONFLICT' });

    const stored = await users.findById(user.id);
    expect(server.deps.secrets.open('totp-secret', stored!.mfa!.sealedSecret!)).toBe(second.secret);
  });

  /** API keys over a store whose next `method` call matching `matches` is held (see storeHoldingOneRead). */
  const apiKeysHolding = (method: 'setMembers' | 'ttl', matches: RegExp) => {
    const base = server.deps.store;
    let gate: { reached: () => void; release: Promise<void> } | undefined;
    const store: Store = {
      ...base,
      [method]: async (key: string) => {
        const value = await (base[method] as (k: string) => Promise<unknown>)(key);
        if (gate && matches.test(key)) {
          const { reached, release } = gate;
          gate = undefined;
          reached();
          await release;
        }
        return value;
      },
    };
    const apiKeys = createApiKeyService({
      store, clock: server.deps.clock, secrets: server.deps.secrets, users: server.deps.users, audit: server.deps.audit,
      logger: createLogger('silent'), environment: server.deps.config.apiKeyEnv, policy: () => ({ maxLifetimeMs: 86_400_000, rotationGraceMs: 3_600_000 }),
    });
    const hold = () => {
      let reached!: () => void;
      let release!: () => void;
      const readDone = new Promise<void>((resolve) => { reached = resolve; });
      gate = { reached, release: new Promise<void>((resolve) => { release = resolve; }) };
      return { readDone, release: () => release() };
    };
    return { apiKeys, hold };
  };
  const keyOwner = () => server.deps.users.create({ email: `ak-${randomAlphanumeric(6).toLowerCase()}@example.test`, password: 'Some-Password-123!', scopes: ['cmdb.read'] });

  it('API keys: "revoke all" also ends a key created while it ran, and leaves none unlisted', async () => {
    const { apiKeys, hold } = apiKeysHolding('setMembers', /^user-apikeys:/);
    const owner = await keyOwner();
    const newKey = (name: string) => apiKeys.create({ ownerId: owner.id, grantableScopes: owner.scopes, name, scopes: ['cmdb.read'], allowedIps: [] });
    const first = await newKey('first');
    const { readDone, release } = hold();
    const revoking = apiKeys.revokeAllForUser(owner.id, 'admin');
    await readDone; // it has read the owner's keys: only the first
    const second = await newKey('second');
    release();
    expect(await revoking).toBe(2);
    for (const { key } of [first, second]) expect((await apiKeys.authenticate(key)).ok).toBe(false);
    expect(await apiKeys.list(owner.id)).toEqual([]);
  });

  it('API keys: a rotation that finishes after the key was revoked leaves no successor', async () => {
    const { apiKeys, hold } = apiKeysHolding('ttl', /^apikey:\{/);
    const owner = await keyOwner();
    const { key, view } = await apiKeys.create({ ownerId: owner.id, grantableScopes: owner.scopes, name: 'rotated', scopes: ['cmdb.read'], allowedIps: [] });
    const { readDone, release } = hold();
    const rotating = apiKeys.rotate(owner.id, view.id, owner.scopes);
    await readDone; // it has loaded the key and is about to mark it rotated
    await apiKeys.revoke(owner.id, view.id);
    release();
    await expect(rotating).rejects.toMatchObject({ kind: 'not_found' });
    expect((await apiKeys.authenticate(key)).ok).toBe(false);
    expect(await apiKeys.list(owner.id), 'no successor').toEqual([]);
  });

  it('API keys: a rotation that stops before the successor is stored leaves the old key whole and rotatable; of two at once, one wins', async () => {
    const owner = await keyOwner();
    const { apiKeys } = apiKeysHolding('ttl', /^$/);
    const { key, view } = await apiKeys.create({ ownerId: owner.id, grantableScopes: owner.scopes, name: 'half-rotated', scopes: ['cmdb.read'], allowedIps: [] });
    const failing: Store = { ...server.deps.store, set: async (k, value, options) => {
      if (k.startsWith('apikey:{') && !k.endsWith(':grace')) throw new Error('connection lost');
      return server.deps.store.set(k, value, options);
    } };
    const stopping = createApiKeyService({
      store: failing, clock: server.deps.clock, secrets: server.deps.secrets, users: server.deps.users, audit: server.deps.audit,
      logger: createLogger('silent'), environment: server.deps.config.apiKeyEnv, policy: () => ({ maxLifetimeMs: 86_400_000, rotationGraceMs: 3_600_000 }),
    });
    await expect(stopping.rotate(owner.id, view.id, owner.scopes)).rejects.toThrow('connection lost');
    expect((await apiKeys.authenticate(key)).ok).toBe(true);
    expect((await apiKeys.list(owner.id)).map((k) => [k.id, k.status])).toEqual([[view.id, 'active']]);

    const both = await Promise.allSettled([1, 2].map(() => apiKeys.rotate(owner.id, view.id, owner.scopes)));
    expect(both.filter((r) => r.status === 'fulfilled')).toHaveLength(1);
    expect(both.find((r): r is PromiseRejectedResult => r.status === 'rejected')?.reason).toMatchObject({ kind: 'not_rotatable' });
    const listed = await apiKeys.list(owner.id);
    expect(listed, 'the key and one successor').toHaveLength(2);
  });

  it('set-password links: of two issued at once only one works; a newer link survives the older one being used', async () => {
    const invites = createInvites({ store: server.deps.store, secrets: server.deps.secrets, ttlSeconds: 3600 });
    const userId = `usr_${randomAlphanumeric(20)}`;
    const links = await Promise.all([invites.issue(userId, 'invite'), invites.issue(userId, 'reset')]);
    const live = await Promise.all(links.map(async ({ token }) => (await invites.peek(token)) !== null));
    expect(live.filter(Boolean), 'one live link').toHaveLength(1);
    const survivor = links[live.indexOf(true)].token;
    const other = links[live.indexOf(false)].token;
    expect(await invites.consume(other)).toBeNull();

    // Used while a newer link is issued: the newer one stays live, and revoking the user's link finds it.
    const newer = await invites.issue(userId, 'reset');
    expect(await invites.consume(survivor)).toBeNull();
    expect(await invites.peek(newer.token)).toMatchObject({ userId });
    await invites.revokeFor(userId);
    expect(await invites.consume(newer.token)).toBeNull();
  });

  it('runtime settings: two admins changing different settings at once both get their change', async () => {
    const { settings } = server.deps;
    await Promise.all([
      settings.update({ corsOrigins: ['https://one.example.test'] }, 'admin-a'),
      settings.update({ apiKeys: { allowQueryParam: true } }, 'admin-b'),
    ]);
    const now = await settings.refresh();
    expect(now.settings.corsOrigins).toEqual(['https://one.example.test']);
    expect(now.settings.apiKeys.allowQueryParam).toBe(true);
    expect(now.version).toBeGreaterThanOrEqual(2);
  });
});
