import { html } from './html.ts';
import { layout } from './layout.ts';

export interface MfaPromptView {
  action: string;
  abortAction: string;
  csrfToken: string;
  clientName: string;
  error?: string;
}

/** The second sign-in step for users with TOTP on: a code from the app, or a recovery code. */
export function renderMfaPrompt(view: MfaPromptView): string {
  return layout('Two-step verification', html`
    <h1>Two-step verification</h1>
    <p class="note">to continue to <strong>${view.clientName}</strong></p>
    ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
    <form method="post" action="${view.action}" autocomplete="off">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <label for="code">Code from your authenticator app</label>
      <input id="code" type="text" name="code" required autofocus inputmode="numeric" autocomplete="one-time-code" maxlength="32">
      <p class="note">Lost your device? Enter one of your recovery codes instead.</p>
      <button type="submit">Verify</button>
    </form>
    <form method="post" action="${view.abortAction}">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <button type="submit" class="secondary">Cancel</button>
    </form>`);
}
