import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Deps } from '../deps.ts';
import { AppError } from '../errors/app-error.ts';
import { parseBody } from '../http/koa-body.ts';
import { isSubset, oidcScopes, parseScope } from '../domain/scopes.ts';
import { apiAudienceOf } from '../config/load.ts';
import { renderLogin } from '../../views/login.ts';
import { renderConsent } from '../../views/consent.ts';
import { renderMessage } from '../../views/message.ts';
import { renderMfaPrompt } from '../../views/mfa.ts';
import { requestFacts } from '../http/request-facts.ts';
import { createCsrf } from './csrf.ts';
import { createPendingMfa } from './pending-mfa.ts';
import { unlessLocked } from './locked-page.ts';
import { epochSeconds } from '../clock.ts';
import { loginEndedSince } from '../domain/users.ts';

const GENERIC_LOGIN_ERROR = 'Invalid email or password.';
const WRONG_CODE_ERROR = 'That code is not valid. Try again.';

type Details = Awaited<ReturnType<Provider['interactionDetails']>>;

/**
 * The login and consent pages the provider sends users to (/interaction/:uid). Every
 * POST lives under that path because the provider's interaction cookie is scoped to it.
 */
export function interactionRoutes(deps: Deps, provider: () => Provider): Router {
  const { users, scopeCatalog } = deps;
  const audience = apiAudienceOf(deps.config);
  const csrf = createCsrf(deps.secrets.macKey('csrf'));
  const pendingMfa = createPendingMfa(deps);
  const router = new Router({ prefix: '/interaction' });
  const paths = (uid: string) => ({
    login: `/interaction/${uid}/login`,
    confirm: `/interaction/${uid}/confirm`,
    mfa: `/interaction/${uid}/mfa`,
    abort: `/interaction/${uid}/abort`,
  });

  const details = async (ctx: Context): Promise<Details> => {
    const found = await provider().interactionDetails(ctx.req, ctx.res);
    if (found.uid !== ctx.params.uid) throw new AppError('FORBIDDEN');
    return found;
  };

  const clientNameOf = async (clientId: string) => {
    const client = await provider().Client.find(clientId);
    return (client?.clientName as string | undefined) ?? clientId;
  };

  const requireCsrf = (ctx: Context, uid: string) => {
    if (!csrf.isValid(uid, (ctx.request.body as Record<string, unknown> | undefined)?.csrf)) {
      ctx.status = 403;
      ctx.type = 'html';
      ctx.body = renderMessage('Request refused', ['This form has expired or did not come from this site. Go back and try again.']);
      return false;
    }
    return true;
  };

  const finish = async (ctx: Context, result: Parameters<Provider['interactionResult']>[2], merge: boolean) => {
    const redirectTo = await provider().interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission: merge });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  };

  async function renderPrompt(ctx: Context, interaction: Details, error?: string, email?: string) {
    const { uid, prompt, params, session } = interaction;
    const clientName = await clientNameOf(String(params.client_id));
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = renderLogin({ action: paths(uid).login, abortAction: paths(uid).abort, csrfToken: csrf.tokenFor(uid), clientName, email, error });
      return;
    }
    if (prompt.name === 'consent') {
      const user = session?.accountId ? await users.findById(session.accountId) : null;
      if (!user) throw new AppError('FORBIDDEN');
      const { granted, withheld } = splitScopes(String(params.scope ?? ''), user.scopes);
      ctx.body = renderConsent({
        action: paths(uid).confirm,
        abortAction: paths(uid).abort,
        csrfToken: csrf.tokenFor(uid),
        clientName,
        userEmail: user.email,
        scopes: granted.map((name) => ({ name, description: scopeCatalog[name] ?? name })),
        withheld,
      });
      return;
    }
    throw new AppError('FORBIDDEN');
  }

  async function renderMfa(ctx: Context, interaction: Details, error?: string) {
    const { uid, params } = interaction;
    ctx.type = 'html';
    ctx.body = renderMfaPrompt({
      action: paths(uid).mfa,
      abortAction: paths(uid).abort,
      csrfToken: csrf.tokenFor(uid),
      clientName: await clientNameOf(String(params.client_id)),
      error,
    });
  }

  router.get('/:uid', async (ctx) => {
    const interaction = await details(ctx);
    // Back on the page after a right password: the code step is still waiting.
    if (interaction.prompt.name === 'login' && (await pendingMfa.pendingOf(interaction.uid))) return renderMfa(ctx, interaction);
    await renderPrompt(ctx, interaction);
  });

  router.post('/:uid/login', parseBody(), async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw new AppError('FORBIDDEN');
    if (!requireCsrf(ctx, interaction.uid)) return;
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const email = typeof body.email === 'string' ? body.email.slice(0, 320) : '';
    const password = typeof body.password === 'string' ? body.password.slice(0, 1024) : '';
    if (!email || !password) {
      ctx.status = 401;
      await renderPrompt(ctx, interaction, GENERIC_LOGIN_ERROR, email);
      return;
    }
    // The sign-in's time (auth_time) is when its password was checked: a reset after that ends it.
    const checkedAtS = epochSeconds(deps.clock);
    // The same checks, lockout and audit as POST /v1/auth/login.
    const checked = await unlessLocked(ctx,
      () => deps.login.checkPassword(email, password, requestFacts(ctx), 'page'),
      (message) => renderPrompt(ctx, interaction, message, email));
    if (!checked) return;
    if (!checked.ok) {
      ctx.status = 401;
      await renderPrompt(ctx, interaction, GENERIC_LOGIN_ERROR, email);
      return;
    }
    if (checked.mfaRequired) {
      // The code step counts its own attempts; the right password is no failure.
      await Promise.all([pendingMfa.start(interaction.uid, checked.user.id, checkedAtS), checked.attempt.release()]);
      await renderMfa(ctx, interaction);
      return;
    }
    await finish(ctx, { login: { accountId: checked.user.id, amr: ['pwd'], ts: checkedAtS } }, false);
  });

  router.post('/:uid/mfa', parseBody(), async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'login') throw new AppError('FORBIDDEN');
    if (!requireCsrf(ctx, interaction.uid)) return;
    const pending = await pendingMfa.pendingOf(interaction.uid);
    const user = pending ? await users.findById(pending.userId) : null;
    if (!pending || !user || user.disabled || loginEndedSince(user, pending.checkedAtS)) {
      // No password step (or it expired): start again from the password.
      ctx.status = 401;
      await renderPrompt(ctx, interaction, 'Sign in again to continue.');
      return;
    }
    const body = (ctx.request.body ?? {}) as Record<string, unknown>;
    const code = typeof body.code === 'string' ? body.code.slice(0, 64) : '';
    const amr = await unlessLocked(ctx,
      () => deps.login.checkSecondFactor(user, code, requestFacts(ctx), 'page'),
      (message) => renderMfa(ctx, interaction, message));
    if (amr === undefined) return;
    if (!amr) {
      ctx.status = 401;
      await renderMfa(ctx, interaction, WRONG_CODE_ERROR);
      return;
    }
    await pendingMfa.end(interaction.uid);
    await finish(ctx, { login: { accountId: user.id, amr, ts: pending.checkedAtS || epochSeconds(deps.clock) } }, false);
  });

  router.post('/:uid/confirm', parseBody(), async (ctx) => {
    const interaction = await details(ctx);
    if (interaction.prompt.name !== 'consent') throw new AppError('FORBIDDEN');
    if (!requireCsrf(ctx, interaction.uid)) return;
    const { session, params, grantId } = interaction;
    const user = session?.accountId ? await users.findById(session.accountId) : null;
    if (!user || user.disabled) throw new AppError('FORBIDDEN');
    const { Grant } = provider();
    const grant = (grantId ? await Grant.find(grantId) : undefined)
      ?? new Grant({ accountId: user.id, clientId: String(params.client_id) });
    // The page showed the whole request (what the user holds to allow, what is withheld), not
    // only what the provider found missing: prompt=consent names nothing as missing, and a
    // scope withheld before but held now (consent-policy.ts) is not "missing" to it either.
    const requested = parseScope(String(params.scope ?? ''));
    const missing = {
      missingOIDCScope: requested,
      missingOIDCClaims: (interaction.prompt.details as { missingOIDCClaims?: string[] }).missingOIDCClaims,
      missingResourceScopes: { [audience]: requested },
    };
    if (missing.missingOIDCScope?.length) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims?.length) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      const { granted, withheld } = splitScopes(scopes.join(' '), user.scopes);
      if (granted.length) grantResourceScopes(grant, resource, granted);
      // Scopes the user does not hold are rejected, not granted, so consent is not asked again.
      if (withheld.length) grant.rejectResourceScope(resource, withheld.join(' '));
    }
    await finish(ctx, { consent: { grantId: await grant.save() } }, true);
  });

  router.post('/:uid/abort', parseBody(), async (ctx) => {
    const interaction = await details(ctx);
    if (!requireCsrf(ctx, interaction.uid)) return;
    await finish(ctx, { error: 'access_denied', error_description: 'The user denied the request' }, false);
  });

  return router;
}

/** Requested scopes split into those the user may grant and those their account lacks. */
export function splitScopes(requested: string, held: string[]): { granted: string[]; withheld: string[] } {
  const granted: string[] = [];
  const withheld: string[] = [];
  for (const scope of requested.split(' ').filter(Boolean)) {
    if ((oidcScopes as readonly string[]).includes(scope) || isSubset([scope], held)) granted.push(scope);
    else withheld.push(scope);
  }
  return { granted, withheld };
}

/**
 * Grants scopes of a resource, lifting an earlier rejection of them: a scope withheld
 * while the user lacked it stays in the grant's rejected list, which oidc-provider lets
 * win over the granted one, so without this a user given the scope later could allow it
 * (prompt=consent) and still never get it.
 */
function grantResourceScopes(grant: InstanceType<Provider['Grant']>, resource: string, scopes: string[]): void {
  grant.addResourceScope(resource, scopes.join(' '));
  const rejected = (grant as { rejected?: { resources?: Record<string, string> } }).rejected?.resources;
  if (!rejected?.[resource]) return;
  const lifted = new Set(scopes);
  const still = rejected[resource].split(' ').filter((s) => s && !lifted.has(s));
  if (still.length) rejected[resource] = still.join(' ');
  else delete rejected[resource];
}
