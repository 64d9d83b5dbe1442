import { describe, expect, it } from 'vitest';
import { commands, describeFailure, type CommandContext, type Values } from '../../src/cli/commands.ts';
import { toClientView } from '../../src/domain/client-admin.ts';
import type { CreateClientInput } from '../../src/domain/client-registration.ts';

/** create-client with an admin service that records what it was asked to create. */
async function createClient(values: Values) {
  const created: CreateClientInput[] = [];
  const ctx = {
    values,
    deps: { scopeCatalog: { openid: 'OpenID' } },
    admin: {
      clientAdmin: {
        async create(input: CreateClientInput) {
          created.push(input);
          const { client_id: _id, ...fields } = input;
          return { client: toClientView({ ...fields, client_id: 'cl_test' }) };
        },
      },
    },
    readPassword: async () => '',
  } as unknown as CommandContext;
  const result = await commands['create-client'](ctx);
  return { result, input: created[0] };
}

describe('CLI create-client --application-type', () => {
  it('passes native through, with a private-use scheme and a portless loopback redirect', async () => {
    const { result, input } = await createClient({
      name: 'CLI', 'application-type': 'native', 'auth-method': 'none', 'redirect-uri': ['http://127.0.0.1/callback', 'com.example.cli:/callback'],
    });
    expect(input).toMatchObject({ application_type: 'native', redirect_uris: ['http://127.0.0.1/callback', 'com.example.cli:/callback'] });
    expect(result.lines[0]).toBe('created client cl_test (native, none) grants: authorization_code refresh_token');
    expect(result.json).toMatchObject({ application_type: 'native' });
  });

  it('defaults to web, where a private-use scheme is a usage error naming the field', async () => {
    expect((await createClient({ name: 'Portal', 'redirect-uri': ['https://portal.example.com/cb'] })).input.application_type).toBe('web');
    const cases: [Values, string][] = [
      [{ name: 'x', 'redirect-uri': ['com.example.cli:/callback'] }, 'redirect_uris.0'],
      [{ name: 'x', 'application-type': 'desktop' }, 'application_type'],
    ];
    for (const [values, field] of cases) {
      const failure = await createClient(values).then(() => null, (err: unknown) => describeFailure(err));
      expect(failure?.usage).toBe(true);
      expect(failure?.message).toContain(`${field}: `);
    }
  });
});
