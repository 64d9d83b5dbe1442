import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser } from 'playwright-core';
import { launchChromium } from '../support/chromium.ts';
import { startTestServer, type TestServer } from '../support/test-server.ts';

describe('login and consent pages in headless Chromium', () => {
  let server: TestServer;
  let browser: Browser;

  beforeAll(async () => {
    server = await startTestServer();
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
  });

  const authorizeUrl = () => {
    const url = new URL(`${server.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      client_id: server.demoClient.client_id,
      response_type: 'code',
      scope: 'openid email cmdb.read reports.read',
      redirect_uri: server.demoClient.redirect_uri,
      state: 'browser-state',
    }).toString();
    return url.toString();
  };

  it('signs in, consents and lands on the redirect URI with a code', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl());
    expect(await page.locator('h1').textContent()).toBe('Sign in');

    await page.fill('input[name=email]', server.admin.email);
    await page.fill('input[name=password]', 'wrong password here');
    await page.click('button[type=submit] >> text=Sign in');
    expect(await page.locator('.error').textContent()).toBe('Invalid email or password.');

    await page.fill('input[name=password]', server.admin.password);
    await page.click('button[type=submit] >> text=Sign in');
    expect(await page.locator('h1').textContent()).toBe('Allow access?');
    const listed = await page.locator('ul.scopes li').allTextContents();
    expect(listed.join(' ')).toContain('Read configuration items');

    await page.click('button >> text=Allow');
    await page.waitForURL(/\/demo\/callback\?/);
    const landed = new URL(page.url());
    expect(landed.searchParams.get('code')).toBeTruthy();
    expect(landed.searchParams.get('state')).toBe('browser-state');
    await page.screenshot({ path: 'test-results/browser-login.png' }).catch(() => undefined);

    // The grant is remembered: a second authorization skips login and consent.
    await page.goto(authorizeUrl());
    await page.waitForURL(/\/demo\/callback\?/);
    expect(new URL(page.url()).searchParams.get('code')).toBeTruthy();
    await context.close();
  });

  it('Deny sends the user back with access_denied', async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(authorizeUrl());
    await page.fill('input[name=email]', server.admin.email);
    await page.fill('input[name=password]', server.admin.password);
    await page.click('button[type=submit] >> text=Sign in');
    await page.click('button >> text=Deny');
    await page.waitForURL(/\/demo\/callback\?/);
    expect(new URL(page.url()).searchParams.get('error')).toBe('access_denied');
    await context.close();
  });
});
