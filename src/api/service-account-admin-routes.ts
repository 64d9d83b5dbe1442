import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { ScopeNotGrantableError } from '../domain/client-admin.ts';
import { serviceAccountAlgs } from '../domain/service-account-keys.ts';
import { insufficientScope } from '../http/credentials.ts';
import { actorOf } from './admin-actor.ts';
import { route, type RouteSpec, printable } from './route.ts';

const TAG = 'Admin: service accounts';
const SCOPE = 'admin.settings';

const scopes = z.array(z.string().max(64)).max(64);
const publicKey = z.union([z.string().max(16_384), z.record(z.string(), z.unknown())])
  .describe('PEM public key (SPKI "BEGIN PUBLIC KEY", PKCS#1 or a certificate) or a public JWK; leave out to have the server make a key pair');
const alg = z.enum(serviceAccountAlgs).describe('RSA keys: RS256 (default) or PS256; generated pairs: the algorithm of the new pair (default RS256)');

const keyView = z.object({
  kid: z.string(),
  alg: z.enum(serviceAccountAlgs),
  status: z.enum(['active', 'retired']),
  publicJwk: z.record(z.string(), z.unknown()),
  createdAt: z.string(),
  retiredAt: z.string().optional(),
});
const accountView = z.object({
  id: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  disabled: z.boolean(),
  keys: z.array(keyView),
  createdAt: z.string(),
  updatedAt: z.string(),
  createdBy: z.string(),
});
const keyFile = z.object({
  type: z.literal('service_account'),
  account_id: z.string(),
  key_id: z.string(),
  private_key: z.string().describe('PKCS#8 PEM; shown only in this response, never stored'),
  token_uri: z.string(),
}).describe('present only when the server made the key pair');

const idParams = z.object({ id: z.string().regex(/^sa_[A-Za-z0-9]{20}$/, 'not a service account id') });
const keyParams = idParams.extend({ kid: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'not a key id') });

/**
 * /v1/admin/service-accounts (admin.settings): accounts for the JWT-bearer grant, their
 * keys and scopes. An account never gets a scope the admin does not hold.
 */
export function adminServiceAccountRoutes(deps: Pick<Deps, 'config'>, admin: Pick<AdminServices, 'serviceAccounts'>): RouteSpec[] {
  const { serviceAccounts } = admin;
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
  const notGrantable = { description: 'The caller lacks a scope it would grant (or that the account holds); required_scope names them' };

  return [
    route({
      ...common,
      method: 'get',
      path: '/admin/service-accounts',
      summary: 'List service accounts in id order',
      responses: { 200: { description: 'Every service account', schema: z.object({ serviceAccounts: z.array(accountView) }) } },
      async handler(ctx) {
        ctx.body = { serviceAccounts: await serviceAccounts.list() };
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/service-accounts',
      summary: 'Create a service account with an uploaded public key, or with a server-made key pair (key file shown once)',
      body: z.object({ name: printable(100).min(1), scopes, publicKey: publicKey.optional(), alg: alg.optional() }).strict(),
      responses: {
        201: { description: 'Created', schema: accountView.extend({ keyFile: keyFile.optional() }) },
        403: notGrantable,
        409: { description: 'The public key is already registered to a service account' },
      },
      async handler(ctx, { body, principal }) {
        const { account, keyFile: file } = await granting(() => serviceAccounts.create(body, actorOf(ctx, principal)));
        ctx.status = 201;
        ctx.set('Location', `/v1/admin/service-accounts/${account.id}`);
        ctx.body = { ...account, ...(file ? { keyFile: file } : {}) };
      },
    }),
    route({
      ...common,
      method: 'get',
      path: '/admin/service-accounts/:id',
      summary: 'Read a service account',
      params: idParams,
      responses: { 200: { description: 'The service account', schema: accountView }, 404: { description: 'No such service account' } },
      async handler(ctx, { params }) {
        ctx.body = await serviceAccounts.get(params.id);
      },
    }),
    route({
      ...common,
      method: 'patch',
      path: '/admin/service-accounts/:id',
      summary: 'Change name, scopes or disabled (disabling, or removing a scope, revokes the tokens already issued)',
      params: idParams,
      body: z.object({ name: printable(100).optional(), scopes: scopes.optional(), disabled: z.boolean().optional() }).strict()
        .refine((b) => Object.keys(b).length > 0, 'nothing to change'),
      responses: { 200: { description: 'The changed service account', schema: accountView }, 403: notGrantable, 404: { description: 'No such service account' } },
      async handler(ctx, { params, body, principal }) {
        ctx.body = await granting(() => serviceAccounts.update(params.id, body, actorOf(ctx, principal)));
      },
    }),
    route({
      ...common,
      method: 'delete',
      path: '/admin/service-accounts/:id',
      summary: 'Delete a service account and revoke its tokens',
      params: idParams,
      responses: { 204: { description: 'Deleted' }, 403: notGrantable, 404: { description: 'No such service account' } },
      async handler(ctx, { params, principal }) {
        await granting(() => serviceAccounts.remove(params.id, actorOf(ctx, principal)));
        ctx.status = 204;
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/service-accounts/:id/keys',
      summary: 'Add a key (uploaded public key, or a server-made pair whose key file is shown once); the other keys keep working',
      params: idParams,
      body: z.object({ publicKey: publicKey.optional(), alg: alg.optional() }).strict(),
      responses: {
        201: { description: 'Added', schema: z.object({ key: keyView, keyFile: keyFile.optional() }) },
        403: { description: 'The caller does not hold every scope of the account; required_scope names the missing ones' },
        404: { description: 'No such service account' },
        409: { description: 'Key already registered, kid taken, or too many active keys' },
      },
      async handler(ctx, { params, body, principal }) {
        const { key, keyFile: file } = await granting(() => serviceAccounts.addKey(params.id, body, actorOf(ctx, principal)));
        ctx.status = 201;
        ctx.body = { key, ...(file ? { keyFile: file } : {}) };
      },
    }),
    route({
      ...common,
      method: 'post',
      path: '/admin/service-accounts/:id/keys/:kid/retire',
      summary: 'Retire a key: assertions it signs are refused from now on',
      params: keyParams,
      responses: { 200: { description: 'The service account', schema: accountView }, 403: notGrantable, 404: { description: 'No such service account or key' } },
      async handler(ctx, { params, principal }) {
        ctx.body = await granting(() => serviceAccounts.retireKey(params.id, params.kid, actorOf(ctx, principal)));
      },
    }),
  ];
}
