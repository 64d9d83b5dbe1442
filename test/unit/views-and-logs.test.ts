import { describe, expect, it } from 'vitest';
import { Writable } from 'node:stream';
import { html, escapeHtml } from '../../views/html.ts';
import { createLogger, safePath } from '../../src/logger.ts';
import { deviceCodeMessage } from '../../src/oidc/provider.ts';

describe('HTML escaping', () => {
  it('escapes every interpolated value', () => {
    const evil = '"><script>alert(1)</script>\'`';
    expect(html`<p title="${evil}">${evil}</p>`.value).not.toMatch(/<script>|"><|'`/);
    expect(escapeHtml('<a href="x">')).toBe('&#60;a href=&#34;x&#34;&#62;');
  });
});

describe('the device page', () => {
  const named = (name: string, extra: object = {}) => Object.assign(new Error('x'), { name }, extra);

  it('says what went wrong with the code, by the provider\'s error class', () => {
    expect(deviceCodeMessage(undefined)).toBe('Enter the code shown on your device.');
    expect(deviceCodeMessage(named('NoCodeError'))).toBe('Enter the code shown on your device.');
    expect(deviceCodeMessage(named('NotFoundError'))).toBe('That code is not valid. Check it and try again.');
    expect(deviceCodeMessage(named('ExpiredError'))).toMatch(/^That code has expired\./);
    expect(deviceCodeMessage(named('AlreadyUsedError'))).toMatch(/^That code has already been used\./);
    expect(deviceCodeMessage(named('AbortedError'))).toMatch(/^Cancelled/);
    expect(deviceCodeMessage(named('InvalidRequest', { error_description: 'xsrf token invalid' }))).toMatch(/^This page expired/);
    expect(deviceCodeMessage(named('InvalidRequest', { error_description: 'could not find device form details' }))).toMatch(/^This page expired/);
    expect(deviceCodeMessage(named('InvalidRequest', { error_description: 'parameters must not be provided twice' }))).toBe('That code is not valid. Check it and try again.');
  });
});

describe('logs', () => {
  it('redact secrets wherever they appear', () => {
    const lines: string[] = [];
    const sink = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    const logger = createLogger('info', sink);
    logger.info({ password: 'hunter2-password', body: { refreshToken: 'rt-secret', token: 'jwt-secret' }, authorization: 'Bearer abc' }, 'x');
    const out = lines.join('');
    for (const secret of ['hunter2-password', 'rt-secret', 'jwt-secret', 'Bearer abc']) expect(out).not.toContain(secret);
  });

  it('strip credentials from logged URLs', () => {
    expect(safePath('/v1/auth/verify?api_key=nsa_live_abc&scope=cmdb.read')).toBe('/v1/auth/verify?api_key=%5Bredacted%5D&scope=cmdb.read');
    expect(safePath('/demo/callback?code=abc&state=s')).not.toContain('abc');
    expect(safePath('/healthz')).toBe('/healthz');
  });

  it('strip values shaped like a credential from logged URLs, whatever their parameter is called', () => {
    const jwt = 'eyJhbGciOiJFUzI1NiJ9.eyJzdWIiOiJ1c3JfMSJ9.c2lnbmF0dXJlLXNpZ25hdHVyZQ';
    for (const value of [jwt, 'nsa_live_0123456789abcdefghijklmnopqrstuv', 'A'.repeat(43), `${'x'.repeat(40)}==`]) {
      const logged = safePath(`/v1/auth/verify?jwt=${encodeURIComponent(value)}&bearer=${encodeURIComponent(value)}&scope=cmdb.read`);
      expect(logged).toBe('/v1/auth/verify?jwt=%5Bredacted%5D&bearer=%5Bredacted%5D&scope=cmdb.read');
    }
    // Ordinary values stay readable.
    expect(safePath('/oauth/authorize?client_id=demo-app&scope=openid+cmdb.read&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb'))
      .toBe('/oauth/authorize?client_id=demo-app&scope=openid+cmdb.read&redirect_uri=https%3A%2F%2Fapp.example.com%2Fcb');
  });
});
