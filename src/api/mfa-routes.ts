import { z } from 'zod';
import type { Deps } from '../deps.ts';
import type { User } from '../domain/users.ts';
import { AppError, validationFailed } from '../errors/app-error.ts';
import { invalidToken } from '../http/credentials.ts';
import type { Principal } from '../http/principal.ts';
import { requestFacts } from '../http/request-facts.ts';
import { route, type RouteSpec } from './route.ts';

const TAG = 'Multi-factor authentication';

const setupResponse = z.object({
  secret: z.string().describe('base32 TOTP secret'),
  otpauthUrl: z.string().describe('otpauth://totp/NopeSight:<email>?secret=...&issuer=NopeSight'),
  qrCode: z.string().describe('data:image/png;base64,... QR code of otpauthUrl'),
  manual_entry_key: z.string().describe('the secret, for typing into an app by hand'),
});

const totpCode = z.string().regex(/^\s*\d{3}\s?\d{3}\s*$/, 'must be the 6-digit code of the authenticator app');

/**
 * /v1/auth/mfa/totp: a signed-in user enrols, activates and removes TOTP. Only a token
 * of the first-party login may: a third-party app holding a user's token must not be
 * able to put its own authenticator on the account.
 */
export function mfaRoutes(deps: Pick<Deps, 'users' | 'mfa' | 'login' | 'config'>): RouteSpec[] {
  const realm = deps.config.publicUrl;

  async function signedInUser(principal: Principal): Promise<User> {
    const user = await deps.users.findById(principal.subject);
    if (!user || user.disabled) throw invalidToken(realm);
    return user;
  }

  return [
    route({
      method: 'post',
      path: '/auth/mfa/totp/setup',
      summary: 'Start TOTP enrolment: a new secret, its otpauth URI and QR code (confirm with /verify within 15 minutes)',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      responses: {
        200: { description: 'Enrolment started', schema: setupResponse },
        409: { description: 'TOTP is already enabled' },
      },
      async handler(ctx, { principal }) {
        const setup = await deps.mfa.beginSetup(await signedInUser(principal));
        ctx.body = setup;
      },
    }),
    route({
      method: 'post',
      path: '/auth/mfa/totp/verify',
      summary: 'Activate TOTP with a current code; returns ten one-time recovery codes, shown only here',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      body: z.object({ code: totpCode }),
      responses: {
        200: { description: 'TOTP is on', schema: z.object({ enabled: z.literal(true), recoveryCodes: z.array(z.string()) }) },
        409: { description: 'No enrolment waiting, or TOTP already enabled' },
      },
      async handler(ctx, { body, principal }) {
        const codes = await deps.mfa.confirmSetup(await signedInUser(principal), body.code, requestFacts(ctx));
        if (!codes) throw validationFailed([{ field: 'code', message: 'code is not valid for this secret (or was already used)' }]);
        ctx.body = { enabled: true, recoveryCodes: codes };
      },
    }),
    route({
      method: 'delete',
      path: '/auth/mfa/totp',
      summary: 'Remove TOTP and the recovery codes; needs a current TOTP code or a recovery code',
      tag: TAG,
      auth: 'required',
      principalTypes: ['user'],
      firstPartyOnly: true,
      body: z.object({ code: z.string().min(1).max(32).describe('a current TOTP code, or a recovery code') }),
      responses: {
        204: { description: 'TOTP removed' },
        401: { description: 'AUTH_FAILED: the code is wrong (counts towards the lockout)' },
        409: { description: 'TOTP is not enabled' },
      },
      async handler(ctx, { body, principal }) {
        const user = await signedInUser(principal);
        if (!deps.mfa.isEnabled(user)) throw new AppError('CONFLICT', { message: 'TOTP is not enabled' });
        const facts = requestFacts(ctx);
        if (!(await deps.login.confirmSecondFactor(user, body.code, facts))) throw new AppError('AUTH_FAILED');
        await deps.mfa.disable(user, facts);
        ctx.status = 204;
      },
    }),
  ];
}
