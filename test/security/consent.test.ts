// Consent: asked before a client first gets access, for every new client and every new
// scope, and again when the client asks with prompt=consent; never skipped silently.
// OIDC Core §3.1.2.1 (prompt), §3.1.2.4 (authorization), §3.1.2.6 (consent_required);
// RFC 6749 §10.2 (a client's identity is no reason to skip consent); OWASP ASVS V51.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { CookieJar, follow, submit, type FormPage } from '../support/form-login.ts';
import { authorizeUrl, demoBasic, oauthPost } from '../support/attack.ts';

const B = { id: 'consent-b', name: 'Consent Test B', redirect: 'https://b.example/cb' };

type Step = { final: string; page?: FormPage };

describe('consent is asked for every new client, every new scope, and on prompt=consent', () => {
  let server: TestServer;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer();
    user = await createTestUser(server, ['cmdb.read', 'cmdb.write'], 'consent');
    await server.deps.clients.save({
      client_id: B.id, client_name: B.name, redirect_uris: [B.redirect],
      grant_types: ['authorization_code'], response_types: ['code'], token_endpoint_auth_method: 'client_secret_basic',
      scope: 'openid email profile cmdb.read cmdb.write',
    }, 'consent-b-secret-0123456789abcdefgh');
  });
  afterAll(() => server?.close());

  /** The authorization request of the demo client (A), or of B with `forB`, as the browser holding `jar` makes it. */
  const authorize = (jar: CookieJar, extra: Record<string, string> = {}, forB = false): Promise<Step> =>
    follow(jar, authorizeUrl(server, { ...(forB ? { client_id: B.id, redirect_uri: B.redirect } : {}), ...extra }), server.url);

  const isLogin = (step: Step) => !!step.page?.html.includes('/login"');
  const isConsent = (step: Step) => !!step.page?.html.includes('/confirm"');

  /** The browser was sent to the client's redirect URI: which one, and what it carries. */
  function answer(step: Step, redirectUri: string): URLSearchParams {
    expect(step.page, `expected a redirect to ${redirectUri}, got the page ${step.page?.url}: ${step.page?.html.slice(0, 300)}`).toBeUndefined();
    expect(step.final.startsWith(`${redirectUri}?`), step.final).toBe(true);
    return new URL(step.final).searchParams;
  }
  /** An error sent to the client, and no code with it. */
  function expectError(step: Step, redirectUri: string, error: string): void {
    const params = answer(step, redirectUri);
    expect(params.get('error'), step.final).toBe(error);
    expect(params.has('code')).toBe(false);
  }
  const expectCode = (step: Step, redirectUri: string) => expect(answer(step, redirectUri).get('code')).toBeTruthy();

  /** The consent page, asking on behalf of `clientName`. */
  function expectConsentPage(step: Step, clientName: string): FormPage {
    expect(isConsent(step), `expected the consent page, got ${step.page ? step.page.url : step.final}`).toBe(true);
    expect(step.page!.html).toContain(clientName);
    return step.page!;
  }

  /** Signs in through A's login page and stops on the consent page (nothing granted yet). */
  async function signedInWithoutConsent(jar: CookieJar, extra: Record<string, string> = {}): Promise<FormPage> {
    const start = await authorize(jar, extra);
    expect(isLogin(start)).toBe(true);
    return expectConsentPage(await submit(jar, start.page!, '/login', { email: user.email, password: user.password }, server.url), 'Demo App');
  }
  const confirm = (jar: CookieJar, page: FormPage) => submit(jar, page, '/confirm', {}, server.url);

  /** A browser signed in and holding a grant to A for `scope`. */
  async function grantedToA(scope = 'openid cmdb.read'): Promise<CookieJar> {
    const jar = new CookieJar();
    expectCode(await confirm(jar, await signedInWithoutConsent(jar, { scope })), server.demoClient.redirect_uri);
    return jar;
  }

  it("prompt=none for a signed-in user's first authorization of a client returns consent_required, never a code", async () => {
    const jar = new CookieJar();
    // Signed in (the password step is done), the consent page left unanswered.
    await signedInWithoutConsent(jar);

    const silentA = await authorize(jar, { prompt: 'none', state: 'silent-a' });
    expectError(silentA, server.demoClient.redirect_uri, 'consent_required');
    expect(answer(silentA, server.demoClient.redirect_uri).get('state')).toBe('silent-a');
    expectError(await authorize(jar, { prompt: 'none' }, true), B.redirect, 'consent_required');

    // Control: the session is live (no login page; a signed-out browser gets login_required),
    // and once the user allows A, prompt=none for A does answer with a code.
    expectError(await authorize(new CookieJar(), { prompt: 'none' }), server.demoClient.redirect_uri, 'login_required');
    const asked = await authorize(jar);
    expectCode(await confirm(jar, expectConsentPage(asked, 'Demo App')), server.demoClient.redirect_uri);
    expectCode(await authorize(jar, { prompt: 'none' }), server.demoClient.redirect_uri);
  });

  it('a grant to client A does not skip consent for client B, and B denied is not B allowed', async () => {
    const jar = await grantedToA();
    // Same user, same session, same scope: B still gets the consent page, naming B.
    const asked = await authorize(jar, {}, true);
    expect(isLogin(asked)).toBe(false);
    const page = expectConsentPage(asked, B.name);
    expect(page.html).not.toContain('Demo App');
    expectError(await authorize(jar, { prompt: 'none' }, true), B.redirect, 'consent_required');

    // The user says no to B: B has no grant afterwards either.
    expectError(await submit(jar, page, '/abort', {}, server.url), B.redirect, 'access_denied');
    expectError(await authorize(jar, { prompt: 'none' }, true), B.redirect, 'consent_required');

    // Allowed, B gets its code, then (control) also silently.
    expectCode(await confirm(jar, expectConsentPage(await authorize(jar, {}, true), B.name)), B.redirect);
    expectCode(await authorize(jar, { prompt: 'none' }, true), B.redirect);
  });

  it('asking the same client for a scope it was not granted brings the consent page back', async () => {
    const jar = await grantedToA('openid cmdb.read');
    // Control: what was granted, or less, is not asked again.
    expectCode(await authorize(jar, { scope: 'openid cmdb.read' }), server.demoClient.redirect_uri);
    expectCode(await authorize(jar, { scope: 'openid' }), server.demoClient.redirect_uri);

    // A new API scope the user holds, and a new OpenID scope.
    for (const [scope, added] of [['openid cmdb.read cmdb.write', 'cmdb.write'], ['openid cmdb.read email', 'email']]) {
      expectError(await authorize(jar, { scope, prompt: 'none' }), server.demoClient.redirect_uri, 'consent_required');
      const page = expectConsentPage(await authorize(jar, { scope }), 'Demo App');
      expect(page.html).toContain(`(${added})`);
    }

    // Allowed, the wider request no longer needs the page.
    const wider = 'openid cmdb.read cmdb.write';
    expectCode(await confirm(jar, expectConsentPage(await authorize(jar, { scope: wider }), 'Demo App')), server.demoClient.redirect_uri);
    expectCode(await authorize(jar, { scope: wider, prompt: 'none' }), server.demoClient.redirect_uri);
  });

  it('a scope withheld while the user lacked it brings the consent page back once the user holds it, and allowing grants it', async () => {
    const promoted = await createTestUser(server, ['cmdb.read'], 'promoted');
    const scope = 'openid cmdb.read cmdb.write';
    const tokenScopes = async (step: Step): Promise<string[]> => {
      const code = answer(step, server.demoClient.redirect_uri).get('code')!;
      const res = await oauthPost(server, '/oauth/token', { grant_type: 'authorization_code', code, redirect_uri: server.demoClient.redirect_uri }, demoBasic(server));
      expect(res.status, res.text).toBe(200);
      return String(res.body.scope).split(' ');
    };
    const jar = new CookieJar();
    const start = await authorize(jar, { scope });
    const consent = expectConsentPage(await submit(jar, start.page!, '/login', { email: promoted.email, password: promoted.password }, server.url), 'Demo App');
    expect(await tokenScopes(await confirm(jar, consent))).not.toContain('cmdb.write');

    // Control: while the user still lacks it, the answered request is not asked again.
    expectCode(await authorize(jar, { scope, prompt: 'none' }), server.demoClient.redirect_uri);

    await server.deps.users.update(promoted.id, (u) => ({ ...u, scopes: ['cmdb.read', 'cmdb.write'] }));
    // Held now: the same request brings the consent page back by itself (no code without it).
    expectError(await authorize(jar, { scope, prompt: 'none' }), server.demoClient.redirect_uri, 'consent_required');
    const again = expectConsentPage(await authorize(jar, { scope }), 'Demo App');
    expect(again.html).toContain('cmdb.write');
    expect(await tokenScopes(await confirm(jar, again))).toContain('cmdb.write');
    // Allowed once, not asked again; and prompt=consent after it still grants the same.
    expectCode(await authorize(jar, { scope, prompt: 'none' }), server.demoClient.redirect_uri);
    expect(await tokenScopes(await confirm(jar, expectConsentPage(await authorize(jar, { scope, prompt: 'consent' }), 'Demo App')))).toContain('cmdb.write');
  });

  it('prompt=consent asks again even though the grant covers the request', async () => {
    const jar = await grantedToA();
    expectCode(await authorize(jar, { prompt: 'none' }), server.demoClient.redirect_uri);

    const asked = await authorize(jar, { prompt: 'consent' });
    expect(isLogin(asked)).toBe(false);
    expectCode(await confirm(jar, expectConsentPage(asked, 'Demo App')), server.demoClient.redirect_uri);
    // And again the next time: prompt=consent is never answered from memory.
    expectConsentPage(await authorize(jar, { prompt: 'consent' }), 'Demo App');

    // prompt=none cannot be combined with it (OIDC Core §3.1.2.1): an error, no code.
    expectError(await authorize(jar, { prompt: 'none consent' }), server.demoClient.redirect_uri, 'invalid_request');
  });
});
