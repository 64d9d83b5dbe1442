import { html, type SafeHtml } from './html.ts';

/** Every page: no scripts, our stylesheet only, works without JavaScript. */
export function layout(title: string, body: SafeHtml): string {
  return html`<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <meta name="referrer" content="no-referrer">
  <title>${title} · NopeSight</title>
  <link rel="stylesheet" href="/assets/style.css">
</head>
<body>
  <main class="card">
    <p class="brand">NopeSight</p>
    ${body}
  </main>
</body>
</html>`.value;
}
