import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../domain/passwords.ts';
import { actorOf } from './admin-actor.ts';
import { route, type RouteSpec, printable } from './route.ts';

const TAG = 'Admin: users';
const SCOPE = 'admin.users';

const password = z.string().min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`).max(MAX_PASSWORD_LENGTH);
const scopes = z.array(z.string().max(64)).max(64);

export const adminUserView = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  disabled: z.boolean(),
  mfaEnabled: z.boolean(),
  passwordSetRequired: z.boolean().describe('invited or reset by link: the user must set a password through the link before logging in'),
  createdAt: z.string(),
  updatedAt: z.string(),
});

const idParams = z.object({ id: z.string().regex(/^usr_[A-Za-z0-9]{1,40}$/, 'not a user id') });

const createBody = z.object({
  email: z.string().trim().max(254).email(),
  password: password.optional().describe('initial password; leave out and set invite: true to send a set-password link instead'),
  name: printable(100).optional(),
  scopes,
  invite: z.boolean().optional().describe('true: no password now; the response holds a one-time inviteUrl'),
}).strict().superRefine((body, ctx) => {
  if (body.password && body.invite) ctx.addIssue({ code: 'custom', path: ['invite'], message: 'give either password or invite: true, not both' });
  if (!body.password && !body.invite) ctx.addIssue({ code: 'custom', path: ['password'], message: 'required unless invite is true' });
});

const updateBody = z.object({
  name: printable(100).optional(),
  scopes: scopes.optional(),
  disabled: z.boolean().optional().describe('true ends every login and API key of the user at once'),
}).strict().refine((b) => Object.keys(b).length > 0, 'nothing to change');

/** /v1/admin/users (admin.users): list, search, create or invite, read, change, reset, revoke, delete. */
export function adminUserRoutes(deps: Pick<Deps, 'config' | 'clock'>, admin: Pick<AdminServices, 'userAdmin'>): RouteSpec[] {
  const { userAdmin } = admin;
  const linkTo = (token: string) => `${deps.config.publicUrl}/invite?token=${encodeURIComponent(token)}`;
  const expiresAt = (seconds: number) => new Date(deps.clock.now() + seconds * 1000).toISOString();
  const common = { tag: TAG, auth: 'required', scope: SCOPE } as const;

  return [
    route({
      ...common,
      method: 'get',
      path: '/admin/users',
      summary: 'List users in id order; `email` searches (substring, case-insensitive)',
      query: z.object({
        email: z.string().max(254).optional(),
        cursor: z.string().max(64).optional().describe('nextCursor of the previous page'),
        limit: z.coerce.number().int().min(1).max(200).default(50),
      }),
      responses: { 200: { description: 'A page of users', schema: z.object({ users: z.array(adminUserView), nextCursor: z.string().nullable() }) } },
      async handler(ctx, { query }) {
        ctx.body = await userAdmin.list(query);
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/users',
      summary: 'Create a user with a password, or invite one (one-time set-password link)',
      body: createBody,
      responses: {
        201: {
          description: 'Created; inviteUrl (invitations only) is shown once',
          schema: adminUserView.extend({ inviteUrl: z.string().optional(), inviteExpiresAt: z.string().optional() }),
        },
        409: { description: 'Email already registered' },
      },
      async handler(ctx, { body, principal }) {
        const { user, inviteToken, inviteExpiresIn } = await userAdmin.create(body, actorOf(ctx, principal));
        ctx.status = 201;
        ctx.set('Location', `/v1/admin/users/${user.id}`);
        ctx.body = { ...user, ...(inviteToken ? { inviteUrl: linkTo(inviteToken), inviteExpiresAt: expiresAt(inviteExpiresIn!) } : {}) };
      },
    }),
    route({
      ...common,
      method: 'get',
      path: '/admin/users/:id',
      summary: 'Read a user',
      params: idParams,
      responses: { 200: { description: 'The user', schema: adminUserView }, 404: { description: 'No such user' } },
      async handler(ctx, { params }) {
        ctx.body = await userAdmin.get(params.id);
      },
    }),
    route({
      ...common,
      method: 'patch',
      path: '/admin/users/:id',
      summary: 'Change name, scopes or disabled (disabling ends every login and API key at once)',
      params: idParams,
      body: updateBody,
      responses: {
        200: { description: 'The changed user', schema: adminUserView },
        403: { description: 'Own account: cannot disable yourself or change your own scopes' },
        404: { description: 'No such user' },
      },
      async handler(ctx, { params, body, principal }) {
        ctx.body = await userAdmin.update(params.id, body, actorOf(ctx, principal));
      },
    }),
    route({
      ...common,
      method: 'delete',
      path: '/admin/users/:id',
      summary: 'Delete a user (ends every login and API key first)',
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 403: { description: 'Cannot delete yourself' }, 404: { description: 'No such user' } },
      async handler(ctx, { params, principal }) {
        await userAdmin.remove(params.id, actorOf(ctx, principal));
        ctx.status = 204;
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/users/:id/reset-password',
      summary: 'Set a new password, or (empty body) disable the old one and return a one-time set-password link; ends the user\'s logins',
      params: idParams,
      body: z.object({ password: password.optional() }).strict(),
      responses: {
        200: { description: 'Done; resetUrl (link mode) is shown once', schema: z.object({ user: adminUserView, resetUrl: z.string().optional(), resetExpiresAt: z.string().optional() }) },
        404: { description: 'No such user' },
      },
      async handler(ctx, { params, body, principal }) {
        const { user, resetToken, resetExpiresIn } = await userAdmin.resetPassword(params.id, body, actorOf(ctx, principal));
        ctx.body = { user, ...(resetToken ? { resetUrl: linkTo(resetToken), resetExpiresAt: expiresAt(resetExpiresIn!) } : {}) };
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/users/:id/reset-mfa',
      summary: 'Remove the user\'s TOTP enrolment and recovery codes',
      params: idParams,
      responses: { 200: { description: 'The user, mfaEnabled false', schema: adminUserView }, 404: { description: 'No such user' } },
      async handler(ctx, { params, principal }) {
        ctx.body = await userAdmin.resetMfa(params.id, actorOf(ctx, principal));
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/users/:id/revoke-sessions',
      summary: 'End every login (refresh and access tokens, browser sessions) and every API key of the user',
      params: idParams,
      responses: { 204: { description: 'Revoked' }, 404: { description: 'No such user' } },
      async handler(ctx, { params, principal }) {
        await userAdmin.revokeSessions(params.id, actorOf(ctx, principal));
        ctx.status = 204;
      },
    }),
  ];
}
