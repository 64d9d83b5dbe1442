import { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';

const { Check, base } = interactionPolicy;

/**
 * oidc-provider's prompts (login, then consent), with one more reason to ask for consent:
 * a requested API scope withheld at an earlier consent, while the user lacked it, that the
 * user holds now. The grant keeps such a scope as rejected, which the provider counts as
 * answered, so without this check it would be left out of every token silently until the
 * client sent prompt=consent. The consent page then asks, and allowing lifts the rejection
 * (src/interactions/routes.ts).
 */
export function consentPolicy(heldScopes: (accountId: string) => Promise<readonly string[]>) {
  const policy = base();
  policy.get('consent')!.checks.add(new Check('rs_scopes_now_held', 'requested scopes withheld before are held now', 'consent_required', async (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    const accountId = oidc.session?.accountId;
    if (!accountId || !oidc.grant) return Check.NO_NEED_TO_PROMPT;
    const requested = oidc.requestParamScopes;
    const withheld = Object.keys(oidc.resourceServers ?? {})
      .flatMap((indicator) => oidc.grant!.getRejectedResourceScope(indicator).split(' '))
      .filter((scope) => scope && requested.has(scope));
    if (!withheld.length) return Check.NO_NEED_TO_PROMPT;
    const held = new Set(await heldScopes(accountId));
    return withheld.some((scope) => held.has(scope)) ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}
