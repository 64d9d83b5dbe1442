import { describe, expect, it } from 'vitest';
import { clientIdSchema, createClientSchema, metadataProblems, redirectUriProblem, redirectUriProblems, updateClientSchema } from '../../src/domain/client-registration.ts';
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

  const NATIVE_SCHEMES = 'must use https, http on a loopback address, or a private-use URI scheme in reverse domain-name form such as com.example.app:/callback (RFC 8252 §7.1)';
  it.each([
    // Loopback over http (any port at the provider, RFC 8252 §7.3), claimed https, private-use schemes (§7.1).
    ['http://127.0.0.1/callback', null],
    ['http://[::1]:51004/callback', null],
    ['http://localhost/callback', null],
    ['https://app.example.com/oauth', null],
    ['com.example.app:/oauth2redirect/example-provider', null],
    ['com.example.app://callback', null],
    ['net.example-corp.tool:/cb', null],
    ['COM.Example.App:/cb', null],
    ['http://app.example.com/cb', 'must use https (http is allowed only for localhost and loopback addresses)'],
    ['https://127.0.0.1/cb', 'must use http on a loopback address (a native client may not use https on localhost or loopback)'],
    ['https://localhost:8443/cb', 'must use http on a loopback address (a native client may not use https on localhost or loopback)'],
    ['myapp:/cb', NATIVE_SCHEMES],
    ['javascript:alert(1)', NATIVE_SCHEMES],
    ['data:text/html,x', NATIVE_SCHEMES],
    ['file:///etc/passwd', NATIVE_SCHEMES],
    ['com.example.app:/cb#x', 'must not contain a fragment'],
    ['com.example.*:/cb', 'must not contain wildcards'],
    ['com.example.app://user:pw@host/cb', 'must not contain credentials'],
  ])('native: %s', (uri, problem) => {
    expect(redirectUriProblem(uri, 'native')).toBe(problem);
  });

  it('refuses private-use schemes for web clients, saying what would allow them', () => {
    expect(redirectUriProblem('com.example.app:/cb')).toBe('must use https (a private-use URI scheme such as com.example.app: needs application_type "native")');
    expect(redirectUriProblem('com.example.app:/cb', 'web')).toBe(redirectUriProblem('com.example.app:/cb'));
  });

  it('judges a whole client by its application_type (absent: web), naming the field and index', () => {
    const uris = { redirect_uris: ['http://127.0.0.1/cb', 'com.example.app:/cb'], post_logout_redirect_uris: ['http://app.example.com/'] };
    expect(redirectUriProblems(uris)).toEqual([
      { field: 'redirect_uris.1', message: expect.stringContaining('application_type "native"') },
      { field: 'post_logout_redirect_uris.0', message: expect.stringContaining('must use https') },
    ]);
    expect(redirectUriProblems({ ...uris, application_type: 'native' })).toEqual([{ field: 'post_logout_redirect_uris.0', message: expect.stringContaining('must use https') }]);
    expect(metadataProblems({ ...uris, application_type: 'web', grant_types: ['authorization_code'] })).toHaveLength(2);
    expect(metadataProblems({ application_type: 'native', redirect_uris: ['com.example.app:/cb'], grant_types: ['authorization_code'] })).toEqual([]);
  });

  it('create: application_type defaults to web and decides the URI rules, each problem reported once; patch: web, native or null', () => {
    expect(createClientSchema.parse({ client_name: 'x' }).application_type).toBe('web');
    expect(createClientSchema.safeParse({ client_name: 'x', application_type: 'native', redirect_uris: ['com.example.app:/cb'] }).success).toBe(true);
    const refused = createClientSchema.safeParse({ client_name: 'x', redirect_uris: ['com.example.app:/cb', 'https://a.example/cb#f'] });
    expect(refused.success).toBe(false);
    expect(refused.error!.issues.map((i) => i.path.join('.')).sort()).toEqual(['redirect_uris.0', 'redirect_uris.1']);
    expect(createClientSchema.safeParse({ client_name: 'x', application_type: 'desktop' }).error?.issues[0].path).toEqual(['application_type']);
    for (const ok of ['web', 'native', null]) expect(updateClientSchema.safeParse({ application_type: ok }).success, String(ok)).toBe(true);
    // A PATCH of the URIs alone cannot know the stored type: only what no type allows is refused here.
    expect(updateClientSchema.safeParse({ redirect_uris: ['com.example.app:/cb'] }).success).toBe(true);
    expect(updateClientSchema.safeParse({ redirect_uris: ['com.example.app:/cb#f'] }).success).toBe(false);
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
