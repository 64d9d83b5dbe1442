// Start-up data on a shared store: the bootstrap admin exists once per store, however many
// instances start at the same moment, and is not made again on later starts.
import { afterEach, describe, expect, it } from 'vitest';
import { randomAlphanumeric } from '../../src/domain/ids.ts';
import { ADMIN_EMAIL, ADMIN_PASSWORD, startTestServer, type TestServer } from '../support/test-server.ts';
import { firstPartyToken } from '../support/user-token.ts';

describe('bootstrap on one Redis shared by several instances', () => {
  let servers: TestServer[] = [];
  afterEach(async () => {
    await Promise.all(servers.map((s) => s.close()));
    servers = [];
  });

  const adminsIn = async (server: TestServer) => {
    const ids = await server.deps.users.listIds();
    const users = await Promise.all(ids.map((id) => server.deps.users.findById(id)));
    return users.filter((u) => u?.email === ADMIN_EMAIL);
  };

  it('creates the admin once when four instances start together, with ADMIN_PASSWORD', async () => {
    const shared = { prefix: `t${randomAlphanumeric(8)}:`, secretKey: randomAlphanumeric(40) };
    servers = await Promise.all(Array.from({ length: 4 }, () => startTestServer(shared)));
    expect(await adminsIn(servers[0])).toHaveLength(1);
    // Any instance signs the one admin in with the configured password.
    for (const server of servers) await firstPartyToken(server, { email: ADMIN_EMAIL, password: ADMIN_PASSWORD });
  });

  it('does not make the admin again on a later start, even after it was deleted', async () => {
    const shared = { prefix: `t${randomAlphanumeric(8)}:`, secretKey: randomAlphanumeric(40) };
    servers.push(await startTestServer(shared));
    const [admin] = await adminsIn(servers[0]);
    await servers[0].deps.users.remove(admin!.id);
    servers.push(await startTestServer(shared));
    expect(await adminsIn(servers[1])).toEqual([]);
  });
});
