// Headless Chromium for browser tests (login / MFA / consent pages).
// Uses Debian's /usr/bin/chromium (installed by scripts/setup-system.sh):
// playwright-core never downloads a browser of its own.
import { chromium } from 'playwright-core';
import type { Browser, LaunchOptions } from 'playwright-core';

export const CHROMIUM_PATH = process.env.CHROMIUM_PATH || '/usr/bin/chromium';

export const CHROMIUM_ARGS: readonly string[] = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-quic',
  '--no-first-run',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches headless Chromium; close it with `await browser.close()`. */
export function launchChromium(opts: LaunchOptions = {}): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    ...opts,
    args: [...CHROMIUM_ARGS, ...(opts.args ?? [])],
  });
}
