import { html } from './html.ts';
import { layout } from './layout.ts';

export interface ConsentView {
  action: string;
  abortAction: string;
  csrfToken: string;
  clientName: string;
  userEmail: string;
  scopes: { name: string; description: string }[];
  /** Requested scopes the user does not hold: listed, never granted. */
  withheld: string[];
}

export function renderConsent(view: ConsentView): string {
  return layout('Allow access', html`
    <h1>Allow access?</h1>
    <p><strong>${view.clientName}</strong> asks to act as <strong>${view.userEmail}</strong> and to:</p>
    <ul class="scopes">
      ${view.scopes.map((s) => html`<li>${s.description} <span class="note">(${s.name})</span></li>`)}
    </ul>
    ${view.withheld.length ? html`<p class="note">Not granted, because your account does not hold them: ${view.withheld.join(', ')}</p>` : ''}
    <form method="post" action="${view.action}">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <button type="submit">Allow</button>
    </form>
    <form method="post" action="${view.abortAction}">
      <input type="hidden" name="csrf" value="${view.csrfToken}">
      <button type="submit" class="secondary">Deny</button>
    </form>`);
}
