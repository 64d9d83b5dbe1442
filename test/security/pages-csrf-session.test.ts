// The HTML pages: CSRF on every form, session fixation, clickjacking. OWASP ASVS V3.2 / V7.2
// (new session id on authentication), V3.5 / V50 (CSRF), V14.4.7 / V3.4 (framing);
// RFC 9700 §4.16 (clickjacking of the authorization pages).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { api } from '../support/admin-client.ts';
import { login, totpAt } from '../support/auth-client.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { CookieJar, follow, formFields, request, submit, type FormPage } from '../support/form-login.ts';
import { authorizeUrl, oauthPost } from '../support/attack.ts';
import { createAdapterFactory } from '../../src/oidc/adapter.ts';
import { ANONYMOUS_SESSION_TTL } from '../../src/oidc/provider.ts';

/** Puts a cookie in the jar the way an attacker would plant it (a subdomain, an injected header). */
function plant(jar: CookieJar, ...cookies: string[]): void {
  jar.store({ headers: { getSetCookie: () => cookies.map((c) => `${c}; path=/`) } } as unknown as Response);
}

/** The value of a cookie the jar would send to `url`. */
function cookieValue(jar: CookieJar, url: string, name: string): string | undefined {
  return jar.header(url).split('; ').find((c) => c.startsWith(`${name}=`))?.slice(name.length + 1);
}

/** A jar that remembers every cookie value it was ever given. */
class RecordingJar extends CookieJar {
  readonly seen = new Set<string>();
  override store(response: Response): void {
    for (const header of response.headers.getSetCookie()) {
      const pair = header.split(';')[0];
      this.seen.add(pair.slice(pair.indexOf('=') + 1));
    }
    super.store(response);
  }
}

/** Password, then consent: the browser ends at the redirect URI with a code. */
async function signIn(server: TestServer, jar: CookieJar, url: string, user: { email: string; password: string }): Promise<URL> {
  let step = await follow(jar, url, server.url);
  for (let i = 0; i < 4 && step.page; i++) {
    if (step.page.html.includes('/login"')) step = await submit(jar, step.page, '/login', user, server.url);
    else if (step.page.html.includes('/confirm"')) step = await submit(jar, step.page, '/confirm', {}, server.url);
    else throw new Error(`unexpected page ${step.page.url}`);
  }
  return new URL(step.final);
}

/** Where prompt=none gets a browser holding only these cookies: a code means a live session. */
async function silentAuthorization(server: TestServer, cookies: string): Promise<URL> {
  const res = await fetch(authorizeUrl(server, { prompt: 'none' }), { headers: { cookie: cookies }, redirect: 'manual' });
  let location = new URL(res.headers.get('location')!, server.url);
  // The provider may pass through its resume step first.
  if (location.origin === server.url && !location.pathname.startsWith('/demo/')) {
    const next = await fetch(location, { headers: { cookie: cookies }, redirect: 'manual' });
    location = new URL(next.headers.get('location')!, server.url);
  }
  return location;
}

describe('session fixation on the sign-in pages', () => {
  let server: TestServer;
  let user: TestUser;

  beforeAll(async () => {
    server = await startTestServer();
    user = await createTestUser(server, ['cmdb.read'], 'fixation');
  });
  afterAll(() => server?.close());

  it('issues a session cookie after login that differs from every cookie set before it', async () => {
    const jar = new RecordingJar();
    const loginPage = await follow(jar, authorizeUrl(server), server.url);
    const before = new Set(jar.seen);
    expect(cookieValue(jar, `${server.url}/oauth/authorize`, '_session')).toBeUndefined();
    const consent = await submit(jar, loginPage.page!, '/login', { email: user.email, password: user.password }, server.url);
    expect(consent.page?.html).toContain('/confirm"');
    const session = cookieValue(jar, `${server.url}/oauth/authorize`, '_session');
    expect(session).toMatch(/^[A-Za-z0-9_-]{20,}$/);
    expect(before.has(session!)).toBe(false);
  });

  it.each([
    ['a planted session id with a forged signature', ['_session=AttackerChosenSessionId0123456789abcdefgh', '_session.sig=Zm9yZ2VkLXNpZ25hdHVyZQ']],
    ['a planted session id without a signature', ['_session=AttackerChosenSessionId0123456789abcdefgh']],
  ])('does not adopt %s: the victim gets a new one and the planted one stays signed out', async (_name, planted) => {
    const jar = new CookieJar();
    plant(jar, ...planted);
    const callback = await signIn(server, jar, authorizeUrl(server), user);
    expect(callback.searchParams.get('code')).toBeTruthy();
    expect(cookieValue(jar, `${server.url}/oauth/authorize`, '_session')).not.toBe('AttackerChosenSessionId0123456789abcdefgh');
    // The attacker, holding only what they planted, has no session.
    const attacker = await silentAuthorization(server, planted.join('; '));
    expect(attacker.searchParams.get('error')).toBe('login_required');
    expect(attacker.searchParams.get('code')).toBeNull();
  });

  it('keeps a session nobody signed in to (a visit to the device or logout page) 15 minutes, a signed-in one SESSION_TTL', async () => {
    const { store, clients, clock, secrets, config } = server.deps;
    const Adapter = createAdapterFactory({ store, clients, clock, secrets });
    const sessionOf = async (jar: CookieJar) => (await new Adapter('Session').find(cookieValue(jar, `${server.url}/oauth/authorize`, '_session')!))!;
    const nowS = Math.floor(clock.now() / 1000);
    for (const page of ['/oauth/device', '/oauth/logout']) {
      const jar = new CookieJar();
      expect((await follow(jar, `${server.url}${page}`, server.url)).page?.status, page).toBe(200);
      const session = await sessionOf(jar);
      expect(session.accountId, page).toBeUndefined();
      expect(session.exp! - nowS, page).toBeLessThanOrEqual(ANONYMOUS_SESSION_TTL + 5);
    }
    const jar = new CookieJar();
    await signIn(server, jar, authorizeUrl(server), user);
    expect((await sessionOf(jar)).exp! - nowS).toBeGreaterThan(config.sessionTtl - 60);
  });

  it('gives a new session id on every sign-in (prompt=login), and the old one dies', async () => {
    const jar = new CookieJar();
    await signIn(server, jar, authorizeUrl(server), user);
    const url = `${server.url}/oauth/authorize`;
    const first = `_session=${cookieValue(jar, url, '_session')}; _session.sig=${cookieValue(jar, url, '_session.sig')}`;
    expect((await silentAuthorization(server, first)).searchParams.get('code')).toBeTruthy();

    const again = await signIn(server, jar, authorizeUrl(server, { prompt: 'login' }), user);
    expect(again.searchParams.get('code')).toBeTruthy();
    const second = `_session=${cookieValue(jar, url, '_session')}; _session.sig=${cookieValue(jar, url, '_session.sig')}`;
    expect(second).not.toBe(first);
    expect((await silentAuthorization(server, second)).searchParams.get('code')).toBeTruthy();
    expect((await silentAuthorization(server, first)).searchParams.get('error')).toBe('login_required');
  });
});

interface FormUnderTest {
  jar: CookieJar;
  page: FormPage;
  /** The end of the form's action URL. */
  action: string;
  /** The hidden field that carries the anti-CSRF value. */
  tokenField: string;
  values: Record<string, string>;
  refusedStatus: number;
  /** Checks that a refused submission changed nothing. */
  unchanged?: () => Promise<void>;
  /** Checks the answer to the submission with the real token (default: not the refusal's status). */
  accepted?: (status: number, text: string) => void;
  /** The form again, for a page that issues a new token with every answer. */
  reload?: () => Promise<FormPage>;
}

describe('CSRF: every form refuses a submission without its token or with a forged one', () => {
  let server: TestServer;
  let user: TestUser;
  let mfa: TestUser & { secret: string };
  let adminToken: string;

  beforeAll(async () => {
    server = await startTestServer();
    user = await createTestUser(server, ['cmdb.read'], 'csrf');
    const created = await createTestUser(server, ['cmdb.read'], 'csrf-mfa');
    const record = (await server.deps.users.findById(created.id))!;
    const setup = await server.deps.mfa.beginSetup(record);
    await server.deps.mfa.confirmSetup(record, totpAt(setup.secret, server.clock.now()), {});
    mfa = { ...created, secret: setup.secret };
    adminToken = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    await server.deps.clients.save({
      client_id: 'tv-app', client_name: 'TV', redirect_uris: [], response_types: [], token_endpoint_auth_method: 'none',
      grant_types: ['urn:ietf:params:oauth:grant-type:device_code'], scope: 'openid cmdb.read',
    });
  });
  afterAll(() => server?.close());

  const loginPage = async () => {
    const jar = new CookieJar();
    return { jar, page: (await follow(jar, authorizeUrl(server), server.url)).page! };
  };
  const signedInJar = async () => {
    const jar = new CookieJar();
    await signIn(server, jar, authorizeUrl(server), user);
    return jar;
  };
  const sessionAlive = async (jar: CookieJar) => {
    const res = await request(jar, authorizeUrl(server, { prompt: 'none' }));
    const location = res.headers.get('location') ?? '';
    return !location.includes('login_required');
  };

  const forms: Record<string, () => Promise<FormUnderTest>> = {
    'sign-in': async () => ({ ...(await loginPage()), action: '/login', tokenField: 'csrf', values: { email: user.email, password: user.password }, refusedStatus: 403 }),
    'cancel sign-in (abort)': async () => ({ ...(await loginPage()), action: '/abort', tokenField: 'csrf', values: {}, refusedStatus: 403 }),
    'TOTP code': async () => {
      const { jar, page } = await loginPage();
      const codeStep = await submit(jar, page, '/login', { email: mfa.email, password: mfa.password }, server.url);
      return { jar, page: codeStep.page!, action: '/mfa', tokenField: 'csrf', values: { code: totpAt(mfa.secret, server.clock.now()) }, refusedStatus: 403 };
    },
    'consent': async () => {
      const { jar, page } = await loginPage();
      const consent = await submit(jar, page, '/login', { email: user.email, password: user.password }, server.url);
      return { jar, page: consent.page!, action: '/confirm', tokenField: 'csrf', values: {}, refusedStatus: 403 };
    },
    'MFA enrolment sign-in': async () => {
      const jar = new CookieJar();
      return { jar, page: (await follow(jar, `${server.url}/account/mfa`, server.url)).page!, action: '/account/mfa', tokenField: 'csrf', values: { email: user.email, password: user.password }, refusedStatus: 403 };
    },
    'MFA enrolment confirmation': async () => {
      const enrollee = await createTestUser(server, ['cmdb.read'], 'enrol-csrf');
      const jar = new CookieJar();
      const start = await follow(jar, `${server.url}/account/mfa`, server.url);
      const scan = await submit(jar, start.page!, '/account/mfa', { email: enrollee.email, password: enrollee.password }, server.url);
      return {
        jar, page: scan.page!, action: '/account/mfa/confirm', tokenField: 'csrf', values: { code: '000000' }, refusedStatus: 403,
        unchanged: async () => expect(server.deps.mfa.isEnabled((await server.deps.users.findById(enrollee.id))!)).toBe(false),
      };
    },
    'invitation (set password)': async () => {
      const invited = await api(server, 'POST', '/v1/admin/users', { token: adminToken, body: { email: `invitee-${Date.now()}@example.test`, scopes: [], invite: true } });
      const jar = new CookieJar();
      const page = (await follow(jar, invited.body.inviteUrl, server.url)).page!;
      return {
        jar, page, action: '/invite', tokenField: 'token', values: { password: 'Chosen-Password-123', confirm: 'Chosen-Password-123' }, refusedStatus: 404,
        unchanged: async () => expect(await server.deps.users.verifyPassword(invited.body.email, 'Chosen-Password-123')).toBeNull(),
      };
    },
    'sign-out confirmation': async () => {
      const jar = await signedInJar();
      const page = (await follow(jar, `${server.url}/oauth/logout`, server.url)).page!;
      return {
        jar, page, action: '/oauth/logout/confirm', tokenField: 'xsrf', values: { logout: 'yes' }, refusedStatus: 400,
        unchanged: async () => expect(await sessionAlive(jar)).toBe(true),
      };
    },
    'device code entry': async () => {
      // A real user code, so that only the token decides.
      const started = await oauthPost(server, '/oauth/device/auth', { client_id: 'tv-app', scope: 'openid cmdb.read' });
      expect(started.status).toBe(200);
      const jar = new CookieJar();
      return {
        jar, page: (await follow(jar, `${server.url}/oauth/device`, server.url)).page!, action: '/oauth/device', tokenField: 'xsrf', values: { user_code: started.body.user_code }, refusedStatus: 400,
        accepted: (_status, text) => {
          expect(text).not.toContain('That code is not valid');
          expect(text).toMatch(/Sign in|Confirm the device/);
        },
        // Every answer of the device page (refusals included) carries a new token.
        reload: async () => (await follow(jar, `${server.url}/oauth/device`, server.url)).page!,
      };
    },
  };

  it('answers a device-code form posted without a session, or with an unknown one, with a 400 page (never a 500)', async () => {
    for (const cookie of [undefined, '_session=unknown-session-id-0123456789ab; _session.sig=forged']) {
      const res = await fetch(`${server.url}/oauth/device`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', ...(cookie ? { cookie } : {}) },
        body: 'xsrf=forged&user_code=BCDF-GHJK',
        redirect: 'manual',
      });
      expect(res.status, cookie ?? 'no cookie').toBe(400);
      expect(res.headers.get('content-type')).toMatch(/^text\/html/);
    }
  });

  it.each(Object.keys(forms))('refuses the %s form without its token and with a forged one, and takes the real one', async (name) => {
    const form = await forms[name]();
    const fields = formFields(form.page.html, form.action);
    expect(fields, `no ${form.action} form on ${form.page.url}`).not.toBeNull();
    expect(fields!.fields[form.tokenField]).toBeTruthy();
    const target = new URL(fields!.action, form.page.url).toString();
    const post = (token: string | undefined) => {
      const body = new URLSearchParams({ ...fields!.fields, ...form.values });
      if (token === undefined) body.delete(form.tokenField);
      else body.set(form.tokenField, token);
      return request(form.jar, target, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body });
    };
    for (const token of [undefined, '', 'forged-0123456789abcdefghijklmnopqrstuvwxyz']) {
      const refused = await post(token);
      expect(refused.status, `${name} with token ${JSON.stringify(token)}`).toBe(form.refusedStatus);
      expect(refused.headers.get('location')).toBeNull();
      await refused.text();
      await form.unchanged?.();
    }
    // The same form with its real token goes through (it is the token that was refused).
    const real = form.reload ? formFields((await form.reload()).html, form.action)!.fields[form.tokenField] : fields!.fields[form.tokenField];
    const accepted = await post(real);
    if (form.accepted) form.accepted(accepted.status, await accepted.text());
    else expect([form.refusedStatus, 403]).not.toContain(accepted.status);
  });

  it("refuses a sign-in form's token on another interaction (tokens are bound to their interaction)", async () => {
    const first = await loginPage();
    const second = await loginPage();
    const token = formFields(first.page.html, '/login')!.fields.csrf;
    const target = formFields(second.page.html, '/login')!;
    const res = await request(second.jar, new URL(target.action, second.page.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ csrf: token, email: user.email, password: user.password }),
    });
    expect(res.status).toBe(403);
  });

  it('renders the provider\'s own forms as forms (sign-out and device pages), not as escaped text', async () => {
    const jar = await signedInJar();
    const logout = (await follow(jar, `${server.url}/oauth/logout`, server.url)).page!;
    expect(logout.html).toContain('<form id="op.logoutForm"');
    expect(logout.html).not.toContain('&#60;form');
    const done = await submit(jar, logout, '/oauth/logout/confirm', { logout: 'yes' }, server.url);
    expect(done.page?.html).toContain('You have been signed out.');
    expect(await sessionAlive(jar)).toBe(false);
    const device = (await follow(new CookieJar(), `${server.url}/oauth/device`, server.url)).page!;
    expect(device.html).toContain('<form id="op.deviceInputForm"');
  });
});

describe('clickjacking: no page may be framed', () => {
  let server: TestServer;
  const pages = new Map<string, Headers>();
  const NAMES = [
    'sign-in page', 'TOTP code page', 'consent page', 'form_post response page', 'unknown client error page', 'expired interaction page',
    'MFA enrolment sign-in page', 'MFA enrolment QR page', 'invitation page', 'dead invitation link page',
    'sign-out page', 'signed-out page', 'device code page', 'demo callback page',
  ];

  beforeAll(async () => {
    server = await startTestServer();
    const user = await createTestUser(server, ['cmdb.read'], 'frames');
    const mfaUser = await createTestUser(server, ['cmdb.read'], 'frames-mfa');
    const record = (await server.deps.users.findById(mfaUser.id))!;
    const setup = await server.deps.mfa.beginSetup(record);
    await server.deps.mfa.confirmSetup(record, totpAt(setup.secret, server.clock.now()), {});
    const keep = (name: string, headers: Headers) => pages.set(name, headers);
    const get = async (jar: CookieJar, url: string) => (await request(jar, url)).headers;

    let jar = new CookieJar();
    const signInStep = await follow(jar, authorizeUrl(server), server.url);
    keep('sign-in page', await get(jar, signInStep.page!.url));
    const consent = await submit(jar, signInStep.page!, '/login', { email: user.email, password: user.password }, server.url);
    keep('consent page', await get(jar, consent.page!.url));
    await submit(jar, consent.page!, '/confirm', {}, server.url);
    keep('form_post response page', await get(jar, authorizeUrl(server, { response_mode: 'form_post' })));
    keep('sign-out page', await get(jar, `${server.url}/oauth/logout`));
    const logout = (await follow(jar, `${server.url}/oauth/logout`, server.url)).page!;
    const fields = formFields(logout.html, '/oauth/logout/confirm')!;
    keep('signed-out page', (await request(jar, fields.action, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...fields.fields, logout: 'yes' }),
    })).headers);

    jar = new CookieJar();
    const mfaStart = await follow(jar, authorizeUrl(server), server.url);
    const codeStep = await submit(jar, mfaStart.page!, '/login', { email: mfaUser.email, password: mfaUser.password }, server.url);
    expect(codeStep.page?.html).toContain('/mfa"');
    keep('TOTP code page', await get(jar, codeStep.page!.url));

    keep('unknown client error page', (await fetch(authorizeUrl(server, { client_id: 'no-such-client' }))).headers);
    keep('expired interaction page', (await fetch(`${server.url}/interaction/no-such-interaction`)).headers);
    jar = new CookieJar();
    const enrol = await follow(jar, `${server.url}/account/mfa`, server.url);
    keep('MFA enrolment sign-in page', await get(jar, `${server.url}/account/mfa`));
    const enrolForm = formFields(enrol.page!.html, '/account/mfa')!;
    keep('MFA enrolment QR page', (await request(jar, `${server.url}/account/mfa`, {
      method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ ...enrolForm.fields, email: user.email, password: user.password }),
    })).headers);
    const admin = (await login(server, { email: server.admin.email, password: server.admin.password })).body.token;
    const invited = await api(server, 'POST', '/v1/admin/users', { token: admin, body: { email: `framed-${Date.now()}@example.test`, scopes: [], invite: true } });
    keep('invitation page', (await fetch(invited.body.inviteUrl)).headers);
    keep('dead invitation link page', (await fetch(`${server.url}/invite?token=inv_nothing`)).headers);
    keep('device code page', (await fetch(`${server.url}/oauth/device`)).headers);
    keep('demo callback page', (await fetch(`${server.url}/demo/callback?code=abc&state=x`)).headers);
  });
  afterAll(() => server?.close());

  it.each(NAMES)('forbids framing the %s (CSP frame-ancestors \'none\' and X-Frame-Options: DENY)', (name) => {
    const headers = pages.get(name);
    expect(headers, name).toBeDefined();
    expect(headers!.get('content-type')).toMatch(/^text\/html/);
    expect(headers!.get('content-security-policy')).toMatch(/(^|;\s*)frame-ancestors 'none'(;|$)/);
    expect(headers!.get('x-frame-options')).toBe('DENY');
  });
});

// RFC 9700 §4.12: after a POST that carries the user's password (or code), the authorization
// server must redirect with 303 See Other. With 307 (or 308) the browser would repeat the
// POST, body and all, to the next URL, and in the end to the client's redirect URI.
describe('the interaction POSTs answer 303 See Other, never 307 or 308 (RFC 9700 §4.12)', () => {
  let server: TestServer;
  let user: TestUser;
  let mfa: TestUser & { secret: string };

  beforeAll(async () => {
    server = await startTestServer();
    user = await createTestUser(server, ['cmdb.read'], 'see-other');
    const created = await createTestUser(server, ['cmdb.read'], 'see-other-mfa');
    const record = (await server.deps.users.findById(created.id))!;
    const setup = await server.deps.mfa.beginSetup(record);
    await server.deps.mfa.confirmSetup(record, totpAt(setup.secret, server.clock.now()), {});
    mfa = { ...created, secret: setup.secret };
  });
  afterAll(() => server?.close());

  /** Submits a form of the page by hand: one POST, its answer as it came (no redirect followed). */
  async function post(jar: CookieJar, page: FormPage, action: string, values: Record<string, string>): Promise<Response> {
    const form = formFields(page.html, action);
    expect(form, `no ${action} form on ${page.url}`).not.toBeNull();
    return request(jar, new URL(form!.action, page.url).toString(), {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ ...form!.fields, ...values }),
    });
  }

  /** The answer to a POST: exactly 303, to the provider's resume step on our own server (not to the client). */
  async function expectSeeOther(res: Response, what: string): Promise<string> {
    expect(res.status, what).toBe(303);
    await res.text();
    const location = new URL(res.headers.get('location')!, server.url);
    expect(location.origin, what).toBe(server.url);
    expect(location.pathname, what).toMatch(/^\/oauth\/authorize\/[\w-]+$/);
    return location.toString();
  }

  /** The browser's GETs from there: to the next page, or to the client's redirect URI. */
  const onward = (jar: CookieJar, url: string) => follow(jar, url, server.url);

  const loginPage = async (jar: CookieJar) => {
    const start = await request(jar, authorizeUrl(server));
    expect(start.status).toBe(303);
    const { page } = await onward(jar, new URL(start.headers.get('location')!, server.url).toString());
    expect(page?.html).toContain('/login"');
    return page!;
  };

  it('password → consent → code: the login and confirm POSTs answer 303; a refused password is a page, not a redirect', async () => {
    const jar = new CookieJar();
    const login = await loginPage(jar);

    const wrong = await post(jar, login, '/login', { email: user.email, password: 'Wrong-Password-123!' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    await wrong.text();

    const signedIn = await post(jar, login, '/login', { email: user.email, password: user.password });
    const consent = await onward(jar, await expectSeeOther(signedIn, 'POST /login'));
    expect(consent.page?.html).toContain('/confirm"');

    const allowed = await post(jar, consent.page!, '/confirm', {});
    const callback = await onward(jar, await expectSeeOther(allowed, 'POST /confirm'));
    expect(new URL(callback.final).searchParams.get('code')).toBeTruthy();
  });

  it('password → TOTP code: the login POST shows the code page, and the mfa POST answers 303', async () => {
    const jar = new CookieJar();
    const login = await loginPage(jar);
    const codeStep = await post(jar, login, '/login', { email: mfa.email, password: mfa.password });
    expect(codeStep.status).toBe(200);
    expect(codeStep.headers.get('location')).toBeNull();
    const codePage: FormPage = { url: login.url, status: codeStep.status, html: await codeStep.text() };
    expect(codePage.html).toContain('/mfa"');

    // The next time step: the code of this one was spent confirming the enrolment.
    server.clock.advance(30_000);
    const good = totpAt(mfa.secret, server.clock.now());
    const wrong = await post(jar, codePage, '/mfa', { code: good === '000000' ? '111111' : '000000' });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('location')).toBeNull();
    await wrong.text();

    const verified = await post(jar, codePage, '/mfa', { code: good });
    const consent = await onward(jar, await expectSeeOther(verified, 'POST /mfa'));
    expect(consent.page?.html).toContain('/confirm"');
  });

  it('cancelling answers 303, from the sign-in page, the TOTP code page and the consent page', async () => {
    const denied = async (jar: CookieJar, res: Response, what: string) => {
      const end = await onward(jar, await expectSeeOther(res, what));
      expect(new URL(end.final).searchParams.get('error'), what).toBe('access_denied');
    };

    let jar = new CookieJar();
    let login = await loginPage(jar);
    await denied(jar, await post(jar, login, '/abort', {}), 'POST /abort on the sign-in page');

    jar = new CookieJar();
    login = await loginPage(jar);
    const codeStep = await post(jar, login, '/login', { email: mfa.email, password: mfa.password });
    const codePage: FormPage = { url: login.url, status: codeStep.status, html: await codeStep.text() };
    await denied(jar, await post(jar, codePage, '/abort', {}), 'POST /abort on the TOTP code page');

    jar = new CookieJar();
    login = await loginPage(jar);
    const consent = await onward(jar, await expectSeeOther(await post(jar, login, '/login', { email: user.email, password: user.password }), 'POST /login'));
    await denied(jar, await post(jar, consent.page!, '/abort', {}), 'POST /abort on the consent page');
  });
});
