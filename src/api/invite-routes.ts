import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../domain/passwords.ts';
import { requestFacts } from '../http/request-facts.ts';
import { route, type RouteSpec } from './route.ts';

/** POST /v1/auth/invite/accept: the API form of the set-password page behind invitation and reset links. */
export function inviteRoutes(admin: Pick<AdminServices, 'passwordSetup'>): RouteSpec[] {
  return [
    route({
      method: 'post',
      path: '/auth/invite/accept',
      summary: 'Set the password with the one-time token of an invitation or admin reset link',
      tag: 'Auth',
      auth: 'none',
      body: z.object({
        token: z.string().max(200).describe('the token parameter of the inviteUrl / resetUrl'),
        password: z.string().min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`).max(MAX_PASSWORD_LENGTH),
      }).strict(),
      responses: {
        200: { description: 'Password set; the user can log in', schema: z.object({ email: z.string() }) },
        401: { description: 'Invalid, used or expired link (INVALID_TOKEN)' },
      },
      async handler(ctx, { body }) {
        const { email } = await admin.passwordSetup.accept(body.token, body.password, requestFacts(ctx));
        ctx.body = { email };
      },
    }),
  ];
}
