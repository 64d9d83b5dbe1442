import { z } from 'zod';
import type { Deps } from '../deps.ts';
import { longestTokenLifetimeMs } from '../deps.ts';
import { auditAdminChange } from '../domain/admin-actor.ts';
import { rotateSigningKeys } from '../domain/key-rotation.ts';
import { InvalidPolicyError, policyChanges, runtimePolicyPatchSchema, runtimePolicySchema, type SettingsSnapshot } from '../domain/runtime-settings.ts';
import { validationFailed } from '../errors/app-error.ts';
import { actorOf } from './admin-actor.ts';
import { route, type RouteSpec } from './route.ts';

const SCOPE = 'admin.settings';

const settingsView = z.object({
  settings: runtimePolicySchema.describe('the policy in force: file defaults with the stored overrides applied'),
  defaults: runtimePolicySchema.describe('the file config (and environment) values'),
  overrides: z.record(z.string(), z.unknown()).describe('only the fields changed through this API'),
  version: z.number().int(),
  updatedAt: z.string().optional(),
  updatedBy: z.string().optional(),
});

/**
 * /v1/admin/settings (admin.settings): the runtime policy, and key rotation. Changes are
 * stored and reach every instance within SETTINGS_REFRESH_SECONDS, without restart.
 */
export function adminSettingsRoutes(deps: Pick<Deps, 'config' | 'settings' | 'signingKeys' | 'keyRing' | 'audit'>): RouteSpec[] {
  const { settings } = deps;
  const view = (snapshot: SettingsSnapshot) => ({ ...snapshot, defaults: settings.defaults() });
  const common = { auth: 'required', scope: SCOPE } as const;

  return [
    route({
      ...common,
      tag: 'Admin: settings',
      method: 'get',
      path: '/admin/settings',
      summary: 'Read the runtime policy (token lifetimes, rate limits, lockout, API keys, CORS origins)',
      responses: { 200: { description: 'The policy in force, the defaults and the overrides', schema: settingsView } },
      async handler(ctx) {
        ctx.body = view(await settings.refresh());
      },
    }),
    route({
      ...common,
      tag: 'Admin: settings',
      method: 'patch',
      path: '/admin/settings',
      summary: 'Change the runtime policy: any subset of fields; null brings a field (or group) back to the file default',
      body: runtimePolicyPatchSchema,
      responses: { 200: { description: 'The policy now in force', schema: settingsView } },
      async handler(ctx, { body, principal }) {
        const actor = actorOf(ctx, principal);
        let result;
        try {
          result = await settings.update(body, actor.subject);
        } catch (err) {
          if (err instanceof InvalidPolicyError) throw validationFailed(err.issues);
          throw err;
        }
        const changes = policyChanges(result.before.settings, result.after.settings);
        await auditAdminChange(deps.audit, actor, 'admin.settings.updated', undefined, {
          fields: changes.map((c) => c.field),
          // What an operator needs to tell what changed (which CORS origin was added...).
          changes: changes.map((c) => `${c.field}: ${JSON.stringify(c.from)} -> ${JSON.stringify(c.to)}`),
          version: result.after.version,
        });
        ctx.body = view(result.after);
      },
    }),
    route({
      ...common,
      tag: 'Admin: signing keys',
      method: 'post',
      path: '/admin/signing-keys/rotate',
      summary: 'Rotate the token signing keys; old keys stay in /oauth/jwks until their tokens expire',
      responses: {
        200: {
          description: 'The new key ids and the retiring ones',
          schema: z.object({ version: z.number().int(), kids: z.array(z.string()), retiring: z.array(z.object({ kid: z.string(), retireAt: z.string() })) }),
        },
      },
      async handler(ctx, { principal }) {
        const result = await rotateSigningKeys(deps, longestTokenLifetimeMs(deps.config, settings.current()), actorOf(ctx, principal));
        // This instance switches at once; the others on their next key refresh.
        await deps.keyRing.refresh();
        ctx.body = result;
      },
    }),
  ];
}
