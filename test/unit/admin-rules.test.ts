import { describe, expect, it } from 'vitest';
import { clientIdSchema, metadataProblems, redirectUriProblem } from '../../src/domain/client-registration.ts';
import { isStreamId, previousStreamId } from '../../src/domain/audit-query.ts';
import { scopesNotGrantable } from '../../src/domain/scope-grants.ts';

describe('redirect URI rules', () => {
  it.each([
    ['https://app.example.com/cb', null],
    ['https://app.example.com:8443/cb?x=1', null],
    ['http://localhost:3000/cb', null],
    ['http://127.0.0.1/cb', null],
    ['http://[::1]:9000/cb', null],
    ['http://app.example.com/cb', 'must use https (http is allowed only for localhost and loopback addresses)'],
    ['http://localhost.evil.example/cb', 'must use https (http is allowed only for localhost and loopback addresses)'],
    ['http://127.0.0.2/cb', 'must use https (http is allowed only for localhost and loopback addresses)'],
    ['https://app.example.com/cb#x', 'must not contain a fragment'],
    ['https://app.example.com/cb#', 'must not contain a fragment'],
    ['https://*.example.com/cb', 'must not contain wildcards'],
    ['https://user@app.example.com/cb', 'must not contain credentials'],
    ['/cb', 'must be an absolute URL'],
    ['app.example.com/cb', 'must be an absolute URL'],
    ['javascript:alert(1)', 'must use https'],
    ['data:text/html,x', 'must use https'],
    [`https://app.example.com/${'a'.repeat(2000)}`, 'is too long'],
  ])('%s', (uri, problem) => {
    expect(redirectUriProblem(uri)).toBe(problem);
  });
});

describe('client ids and metadata', () => {
  it('refuses ids that look like other subjects', () => {
    for (const id of ['usr_x12', 'sa_x12', 'key_x12', 'Sa_x12', 'KEY_abc']) expect(clientIdSchema.safeParse(id).success, id).toBe(false);
    for (const id of ['my-app', 'web.portal', 'cl_abc', 'usr-app']) expect(clientIdSchema.safeParse(id).success, id).toBe(true);
  });
  it('refuses client_credentials for a public client', () => {
    expect(metadataProblems({ token_endpoint_auth_method: 'none', grant_types: ['client_credentials'] })).toHaveLength(1);
    expect(metadataProblems({ token_endpoint_auth_method: 'none', grant_types: ['authorization_code'] })).toEqual([]);
    expect(metadataProblems({ token_endpoint_auth_method: 'private_key_jwt', grant_types: ['client_credentials'] })).toEqual([]);
  });
});

describe('granting scopes', () => {
  it('refuses API scopes the granter does not hold; OIDC scopes are free; admin.users may grant anything', () => {
    expect(scopesNotGrantable(['admin.settings', 'cmdb.read'], ['openid', 'offline_access', 'cmdb.read'])).toEqual([]);
    expect(scopesNotGrantable(['admin.settings', 'cmdb.read'], ['cmdb.read', 'cmdb.delete', 'cmdb.delete', 'admin.users'])).toEqual(['cmdb.delete', 'admin.users']);
    expect(scopesNotGrantable(['admin.users'], ['cmdb.delete', 'admin.settings'])).toEqual([]);
  });
});

describe('audit stream ids', () => {
  it('steps back one id, across the millisecond boundary', () => {
    expect(previousStreamId('1700000000000-5')).toBe('1700000000000-4');
    expect(previousStreamId('1700000000000-0')).toBe('1699999999999-18446744073709551615');
    expect(previousStreamId('0-0')).toBeNull();
    expect(previousStreamId('nonsense')).toBeNull();
    expect(isStreamId('1700000000000-0')).toBe(true);
    expect(isStreamId('1700000000000')).toBe(false);
    expect(isStreamId('-1-0')).toBe(false);
  });
});
