import { html } from './html.ts';
import { layout } from './layout.ts';

export interface EnrolSignInView {
  action: string;
  csrfToken: string;
  email?: string;
  error?: string;
}

/** Step 1 of TOTP enrolment: prove who you are with email and password. */
export function renderEnrolSignIn(view: EnrolSignInView): string {
  return layout('Set up two-step verification', html`
    <h1>Set up two-step verification</h1>
    <p class="note">Sign in to add an authenticator app (Google Authenticator, 1Password, Authy…) to your account.</p>
    ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
    <form method="post" action="${view.action}">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <label for="email">Email</label>
      <input id="email" type="email" name="email" value="${view.email ?? ''}" required autofocus autocomplete="username">
      <label for="password">Password</label>
      <input id="password" type="password" name="password" required autocomplete="current-password">
      <button type="submit">Continue</button>
    </form>`);
}

export interface EnrolScanView {
  action: string;
  csrfToken: string;
  email: string;
  qrCode: string;
  manualEntryKey: string;
  error?: string;
}

/** Step 2: scan the QR code (or type the key), then confirm with a first code. */
export function renderEnrolScan(view: EnrolScanView): string {
  return layout('Scan the QR code', html`
    <h1>Scan the QR code</h1>
    <p class="note">Scan it with your authenticator app for <strong>${view.email}</strong>, then enter the 6-digit code the app shows.</p>
    ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
    <img class="qr" src="${view.qrCode}" alt="QR code for your authenticator app">
    <p class="note">Can't scan? Enter this key by hand:</p>
    <code class="big" id="manual-entry-key">${view.manualEntryKey}</code>
    <form method="post" action="${view.action}" autocomplete="off">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <label for="code">Code from the app</label>
      <input id="code" type="text" name="code" required autofocus inputmode="numeric" autocomplete="one-time-code" maxlength="8">
      <button type="submit">Turn on two-step verification</button>
    </form>`);
}

/** Step 3: the recovery codes, shown this once. */
export function renderRecoveryCodes(codes: string[]): string {
  return layout('Save your recovery codes', html`
    <h1>Two-step verification is on</h1>
    <p>Save these recovery codes somewhere safe. Each one signs you in once if you lose your device.
      <strong>They are shown only now.</strong></p>
    <ul class="codes">
      ${codes.map((code) => html`<li><code>${code}</code></li>`)}
    </ul>
    <p class="note">From now on, signing in asks for a code from your app after your password.</p>`);
}
