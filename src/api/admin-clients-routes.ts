import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { ScopeNotGrantableError } from '../domain/client-admin.ts';
import { createClientSchema, updateClientSchema } from '../domain/client-registration.ts';
import { insufficientScope } from '../http/credentials.ts';
import { actorOf } from './admin-actor.ts';
import { route, type RouteSpec } from './route.ts';

const TAG = 'Admin: clients';
const SCOPE = 'admin.settings';

const clientView = z.object({
  client_id: z.string(),
  client_name: z.string().optional(),
  redirect_uris: z.array(z.string()).optional(),
  post_logout_redirect_uris: z.array(z.string()).optional(),
  grant_types: z.array(z.string()).optional(),
  response_types: z.array(z.string()).optional(),
  token_endpoint_auth_method: z.string().optional(),
  scope: z.string().optional(),
  client_id_issued_at: z.number().optional(),
  id_token_signed_response_alg: z.string().optional(),
  application_type: z.enum(['web', 'native']).describe('web unless the client was registered as native (RFC 8252)'),
}).catchall(z.unknown());
const withSecret = clientView.extend({ client_secret: z.string().optional().describe('shown only in this response (confidential clients)') });

// Config-declared clients may have ids the admin API would not hand out, so reading is looser than creating.
const idParams = z.object({ id: z.string().regex(/^[A-Za-z0-9._:-]{1,128}$/, 'not a client id') });

/** /v1/admin/clients (admin.settings): OAuth clients, RFC 7591 names; secrets shown once. */
export function adminClientRoutes(deps: Pick<Deps, 'config'>, admin: Pick<AdminServices, 'clientAdmin'>): RouteSpec[] {
  const { clientAdmin } = admin;
  const realm = deps.config.publicUrl;
  const common = { tag: TAG, auth: 'required', scope: SCOPE } as const;
  const granting = async <T>(op: () => Promise<T>): Promise<T> => {
    try {
      return await op();
    } catch (err) {
      if (err instanceof ScopeNotGrantableError) throw insufficientScope(realm, err.scopes.join(' '));
      throw err;
    }
  };
  const notGrantable = { description: 'Granting a scope the caller does not hold (needs admin.users to grant any scope); required_scope names it' };

  return [
    route({
      ...common,
      method: 'get',
      path: '/admin/clients',
      summary: 'List OAuth clients in id order',
      query: z.object({ cursor: z.string().max(64).optional(), limit: z.coerce.number().int().min(1).max(200).default(50) }),
      responses: { 200: { description: 'A page of clients', schema: z.object({ clients: z.array(clientView), nextCursor: z.string().nullable() }) } },
      async handler(ctx, { query }) {
        ctx.body = await clientAdmin.list(query);
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/clients',
      summary: 'Register an OAuth client (client_secret shown once for confidential clients)',
      body: createClientSchema,
      responses: {
        201: { description: 'Registered', schema: withSecret },
        403: notGrantable,
        409: { description: 'client_id taken, or declared in the config file' },
      },
      async handler(ctx, { body, principal }) {
        const { client, clientSecret } = await granting(() => clientAdmin.create(body, actorOf(ctx, principal)));
        ctx.status = 201;
        ctx.set('Location', `/v1/admin/clients/${encodeURIComponent(client.client_id)}`);
        ctx.body = { ...client, ...(clientSecret ? { client_secret: clientSecret } : {}) };
      },
    }),
    route({
      ...common,
      method: 'get',
      path: '/admin/clients/:id',
      summary: 'Read a client (never its secret)',
      params: idParams,
      responses: { 200: { description: 'The client', schema: clientView }, 404: { description: 'No such client' } },
      async handler(ctx, { params }) {
        ctx.body = await clientAdmin.get(params.id);
      },
    }),
    route({
      ...common,
      method: 'patch',
      path: '/admin/clients/:id',
      summary: 'Change a client; moving to a secret-based auth method returns a new client_secret once',
      params: idParams,
      body: updateClientSchema,
      responses: {
        200: { description: 'The changed client', schema: withSecret },
        403: { description: 'Granting a scope the caller does not hold, or changing a client that holds one (needs admin.users to grant any scope); required_scope names them' },
        404: { description: 'No such client' },
        409: { description: 'Declared in the config file' },
      },
      async handler(ctx, { params, body, principal }) {
        const { client, clientSecret } = await granting(() => clientAdmin.update(params.id, body, actorOf(ctx, principal)));
        ctx.body = { ...client, ...(clientSecret ? { client_secret: clientSecret } : {}) };
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/clients/:id/rotate-secret',
      summary: 'Issue a new client_secret (shown once); the old one stops working at once',
      params: idParams,
      responses: {
        200: { description: 'The client and its new secret', schema: withSecret.extend({ client_secret: z.string() }) },
        403: { description: 'The client holds a scope the caller could not have given it (needs admin.users, or every scope it holds); required_scope names them' },
        404: { description: 'No such client' },
        409: { description: 'Public or private_key_jwt client, or declared in the config file' },
      },
      async handler(ctx, { params, principal }) {
        const { client, clientSecret } = await granting(() => clientAdmin.rotateSecret(params.id, actorOf(ctx, principal)));
        ctx.body = { ...client, client_secret: clientSecret };
      },
    }),
    route({
      ...common,
      method: 'delete',
      path: '/admin/clients/:id',
      summary: 'Delete a client',
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 403: notGrantable, 404: { description: 'No such client' }, 409: { description: 'Declared in the config file' } },
      async handler(ctx, { params, principal }) {
        await granting(() => clientAdmin.remove(params.id, actorOf(ctx, principal)));
        ctx.status = 204;
      },
    }),
  ];
}
