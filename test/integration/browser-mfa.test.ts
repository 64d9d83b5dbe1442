import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';
import { createTestUser, type TestUser } from '../support/user-token.ts';
import { auditEvents, login, totpAt } from '../support/auth-client.ts';

describe('MFA pages in headless Chromium: enrolment, then login → code → consent → redirect', () => {
  let server: TestServer;
  let browser: Browser;
  let user: TestUser;
  let secret: string;
  let recoveryCodes: string[];

  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchChromium();
    user = await createTestUser(server, ['cmdb.read', 'reports.read'], 'browser');
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const authorizeUrl = (state: string) => {
    const url = new URL(`${server.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: server.demoClient.client_id,
      response_type: 'code',
      scope: 'openid email cmdb.read',
      redirect_uri: server.demoClient.redirect_uri,
      state,
    }).toString();
    return url.toString();
  };

  async function signInWithPassword(page: Page, state: string) {
    await page.goto(authorizeUrl(state));
    expect(await page.locator('h1').textContent()).toBe('Sign in');
    await page.fill('input[name=email]', user.email);
    await page.fill('input[name=password]', user.password);
    await page.click('button[type=submit] >> text=Sign in');
  }

  it('enrols TOTP on the enrolment page: QR code, confirm a code, recovery codes shown once', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${server.url}/account/mfa`);
    await page.fill('input[name=email]', user.email);
    await page.fill('input[name=password]', user.password);
    await page.click('button >> text=Continue');

    expect(await page.locator('h1').textContent()).toBe('Scan the QR code');
    const qr = page.locator('img.qr');
    expect(await qr.getAttribute('src')).toMatch(/^data:image\/png;base64,/);
    // The image really rendered (CSP allows data: images, nothing else).
    expect(await qr.evaluate((img) => { const loaded = img as unknown as { complete: boolean; naturalWidth: number }; return loaded.complete && loaded.naturalWidth > 100; })).toBe(true);
    secret = (await page.locator('#manual-entry-key').textContent())!.trim();
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);

    await page.fill('input[name=code]', totpAt(secret, server.clock.now() + 120_000));
    await page.click('button[type=submit]');
    expect(await page.locator('.error').textContent()).toContain('That code is not valid');

    await page.fill('input[name=code]', totpAt(secret, server.clock.now()));
    await page.click('button[type=submit]');
    expect(await page.locator('h1').textContent()).toBe('Two-step verification is on');
    recoveryCodes = (await page.locator('ul.codes li').allTextContents()).map((c) => c.trim());
    expect(recoveryCodes).toHaveLength(10);
    await page.screenshot({ path: 'test-results/browser-mfa-recovery-codes.png' }).catch(() => undefined);

    // Shown once: the enrolment is over, the page does not show them again.
    await page.goto(`${server.url}/account/mfa`);
    await page.fill('input[name=email]', user.email);
    await page.fill('input[name=password]', user.password);
    await page.click('button >> text=Continue');
    expect(await page.locator('h1').textContent()).toBe('Already set up');
    expect(await page.content()).not.toContain(recoveryCodes[0]);
    await context.close();

    expect((await login(server, { email: user.email, password: user.password })).body.code).toBe('MFA_REQUIRED');
    expect((await auditEvents(server, 'mfa.enabled')).at(-1)?.actor).toBe(user.id);
    // A complete sign-in clears the failure count the password-only attempts above left.
    server.clock.advance(90_000);
    expect((await login(server, { email: user.email, password: user.password, totp_code: totpAt(secret, server.clock.now()) })).status).toBe(200);
    server.clock.advance(90_000);
  });

  it('asks for the code after the password, then consent, then redirects with a code', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInWithPassword(page, 'mfa-state');
    expect(await page.locator('h1').textContent()).toBe('Two-step verification');

    await page.fill('input[name=code]', totpAt(secret, server.clock.now() + 120_000));
    await page.click('button[type=submit] >> text=Verify');
    expect(await page.locator('.error').textContent()).toBe('That code is not valid. Try again.');

    await page.fill('input[name=code]', totpAt(secret, server.clock.now()));
    await page.click('button[type=submit] >> text=Verify');
    expect(await page.locator('h1').textContent()).toBe('Allow access?');
    await page.click('button >> text=Allow');
    await page.waitForURL(/\/demo\/callback\?/);
    const landed = new URL(page.url());
    expect(landed.searchParams.get('code')).toBeTruthy();
    expect(landed.searchParams.get('state')).toBe('mfa-state');
    await page.screenshot({ path: 'test-results/browser-mfa-login.png' }).catch(() => undefined);

    // The code exchanges for tokens like any other.
    const basic = Buffer.from(`${server.demoClient.client_id}:${server.demoClient.client_secret}`).toString('base64');
    const exchanged = await fetch(`${server.url}/oauth/token`, {
      method: 'POST',
      headers: { authorization: `Basic ${basic}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'authorization_code', code: landed.searchParams.get('code')!, redirect_uri: server.demoClient.redirect_uri }),
    });
    expect(exchanged.status).toBe(200);
    const success = (await auditEvents(server, 'login.success')).at(-1);
    expect(success).toMatchObject({ actor: user.id, details: { channel: 'page', amr: ['pwd', 'otp', 'mfa'] } });
    await context.close();
  });

  it('takes a recovery code on the code step, once', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await signInWithPassword(page, 'recovery');
    await page.fill('input[name=code]', recoveryCodes[0]);
    await page.click('button[type=submit] >> text=Verify');
    // A new browser session is a new login: consent is asked again.
    expect(await page.locator('h1').textContent()).toBe('Allow access?');
    await page.click('button >> text=Allow');
    await page.waitForURL(/\/demo\/callback\?/);
    expect(new URL(page.url()).searchParams.get('state')).toBe('recovery');
    await context.close();

    const again = await browser.newContext();
    const second = await again.newPage();
    await signInWithPassword(second, 'recovery-again');
    await second.fill('input[name=code]', recoveryCodes[0]);
    await second.click('button[type=submit] >> text=Verify');
    expect(await second.locator('.error').textContent()).toBe('That code is not valid. Try again.');
    await again.close();
  });

  it('cannot skip the password: the code step alone leads back to the password form', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl('skip'));
    const csrf = await page.locator('input[name=csrf]').first().getAttribute('value');
    const action = (await page.locator('form').first().getAttribute('action'))!.replace(/\/login$/, '/mfa');
    const answer = await page.request.post(new URL(action, server.url).toString(), {
      form: { csrf: csrf!, code: totpAt(secret, server.clock.now()) },
      maxRedirects: 0,
    });
    expect(answer.status()).toBe(401);
    expect(await answer.text()).toContain('Sign in again to continue.');
    await context.close();
  });
});
