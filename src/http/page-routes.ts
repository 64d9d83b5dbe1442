import Router from '@koa/router';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { html } from '../../views/html.ts';
import { renderMessage } from '../../views/message.ts';

const stylesheet = readFileSync(resolve(import.meta.dirname, '../../views/style.css'), 'utf8');

/** Static assets of the pages, and the demo client's landing page. */
export function pageRoutes(options: { demoCallback: boolean }): Router {
  const router = new Router();
  router.get('/assets/style.css', (ctx) => {
    ctx.type = 'text/css';
    ctx.set('Cache-Control', 'public, max-age=3600');
    ctx.body = stylesheet;
  });
  if (options.demoCallback) {
    // Where the demo client lands: shows the code so the README walk-through can use it with curl.
    router.get('/demo/callback', (ctx) => {
      const { code, state, error, error_description: description } = ctx.query;
      ctx.type = 'html';
      ctx.body = error
        ? renderMessage('Authorization failed', [String(error), String(description ?? '')])
        : renderMessage('Authorization code', ['Exchange this code at /oauth/token within a minute:'], html`<code class="big">${code}</code><p class="note">state: ${state}</p>`);
    });
  }
  return router;
}
