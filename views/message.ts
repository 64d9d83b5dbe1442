import { html, type SafeHtml } from './html.ts';
import { layout } from './layout.ts';

/** A plain page with a heading and a few lines (errors, logout, device flow results). */
export function renderMessage(title: string, lines: (string | SafeHtml)[], extra?: SafeHtml): string {
  return layout(title, html`
    <h1>${title}</h1>
    ${lines.map((line) => html`<p>${line}</p>`)}
    ${extra ?? ''}`);
}
