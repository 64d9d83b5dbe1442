import { html } from './html.ts';
import { layout } from './layout.ts';

export interface LoginView {
  action: string;
  csrfToken: string;
  clientName: string;
  email?: string;
  error?: string;
  abortAction: string;
}

export function renderLogin(view: LoginView): string {
  return layout('Sign in', html`
    <h1>Sign in</h1>
    <p class="note">to continue to <strong>${view.clientName}</strong></p>
    ${view.error ? html`<p class="error" role="alert">${view.error}</p>` : ''}
    <form method="post" action="${view.action}" autocomplete="on">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <label for="email">Email</label>
      <input id="email" type="email" name="email" value="${view.email ?? ''}" required autofocus autocomplete="username">
      <label for="password">Password</label>
      <input id="password" type="password" name="password" required autocomplete="current-password">
      <button type="submit">Sign in</button>
    </form>
    <form method="post" action="${view.abortAction}">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <button type="submit" class="secondary">Cancel</button>
    </form>`);
}
