import { html } from './html.ts';
import { layout } from './layout.ts';

export interface SetPasswordView {
  action: string;
  token: string;
  email: string;
  purpose: 'invite' | 'reset';
  minLength: number;
  error?: string;
}

/** The page behind an invitation or admin reset link: choose a password, once. */
export function renderSetPassword(view: SetPasswordView): string {
  const title = view.purpose === 'invite' ? 'Welcome' : 'Choose a new password';
  return layout(title, html`
    <h1>${title}</h1>
    <p class="note">Set the password for <strong>${view.email}</strong>. This link works once.</p>
    ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
    <form method="post" action="${view.action}" autocomplete="on">
      <input type="hidden" name="token" value="${view.token}">
      <input type="email" name="email" value="${view.email}" autocomplete="username" hidden readonly>
      <label for="password">New password</label>
      <input id="password" type="password" name="password" required minlength="${view.minLength}" autofocus autocomplete="new-password">
      <label for="confirm">Repeat it</label>
      <input id="confirm" type="password" name="confirm" required minlength="${view.minLength}" autocomplete="new-password">
      <button type="submit">Set password</button>
    </form>`);
}
