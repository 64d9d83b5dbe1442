import { open, rm } from 'node:fs/promises';
import { resolve } from 'node:path';
import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { longestTokenLifetimeMs } from '../deps.ts';
import { cliActor } from '../domain/admin-actor.ts';
import { SIGNING_ALGS } from '../domain/signing-algs.ts';
import { createClientSchema } from '../domain/client-registration.ts';
import { randomAlphanumeric } from '../domain/ids.ts';
import { rotateSigningKeys } from '../domain/key-rotation.ts';
import { MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH } from '../domain/passwords.ts';
import { apiScopesOf } from '../domain/scopes.ts';
import { AppError } from '../errors/app-error.ts';
import { parseWith, printable } from '../api/route.ts';
import { StoreUnavailableError } from '../store/store.ts';

/** Parsed command-line values (node:util parseArgs). */
export type Values = Record<string, string | boolean | string[] | undefined>;

/** What a command prints: lines for people, one JSON value with --json. */
export interface CommandResult {
  lines: string[];
  json: unknown;
}

export interface CommandContext {
  deps: Deps;
  admin: AdminServices;
  values: Values;
  /** Reads a password from standard input (first line). */
  readPassword(): Promise<string>;
}

export class UsageError extends Error {}

const str = (values: Values, name: string): string | undefined => {
  const v = values[name];
  return typeof v === 'string' ? v : undefined;
};
const required = (values: Values, name: string): string => {
  const v = str(values, name);
  if (!v) throw new UsageError(`--${name} is required`);
  return v;
};
const list = (values: Values, name: string): string[] | undefined => {
  const v = values[name];
  if (Array.isArray(v)) return v;
  return typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined;
};

const email = z.string().trim().max(254).email();
const password = z.string().min(MIN_PASSWORD_LENGTH, `must be at least ${MIN_PASSWORD_LENGTH} characters`).max(MAX_PASSWORD_LENGTH);

const actorFor = (deps: Deps) => cliActor(apiScopesOf(deps.scopeCatalog));

async function createUser(ctx: CommandContext, scopes: string[], invite: boolean): Promise<CommandResult> {
  const { values, admin, deps } = ctx;
  const address = parseWith(email, required(values, 'email'), 'email');
  let chosen: string | undefined;
  if (values['password-stdin']) chosen = parseWith(password, await ctx.readPassword(), 'password');
  const generated = !chosen && !invite ? randomAlphanumeric(20) : undefined;
  const result = await admin.userAdmin.create(
    { email: address, password: chosen ?? generated, name: values.name === undefined ? undefined : parseWith(printable(100), str(values, 'name'), 'name'), scopes, invite },
    actorFor(deps),
  );
  const inviteUrl = result.inviteToken ? `${deps.config.publicUrl}/invite?token=${encodeURIComponent(result.inviteToken)}` : undefined;
  const lines = [`created user ${result.user.id} <${result.user.email}> scopes: ${result.user.scopes.join(' ') || '(none)'}`];
  if (generated) lines.push(`password (shown once): ${generated}`);
  if (inviteUrl) lines.push(`set-password link (shown once, valid ${Math.round(result.inviteExpiresIn! / 3600)} h): ${inviteUrl}`);
  return { lines, json: { ...result.user, ...(generated ? { password: generated } : {}), ...(inviteUrl ? { inviteUrl } : {}) } };
}

export const commands: Record<string, (ctx: CommandContext) => Promise<CommandResult>> = {
  'create-admin': (ctx) => createUser(ctx, apiScopesOf(ctx.deps.scopeCatalog), false),

  'create-user': (ctx) => {
    if (ctx.values.invite && ctx.values['password-stdin']) throw new UsageError('give --invite or --password-stdin, not both');
    return createUser(ctx, list(ctx.values, 'scopes') ?? [], !!ctx.values.invite);
  },

  async 'create-client'({ values, admin, deps }) {
    const body = parseWith(createClientSchema, {
      client_name: required(values, 'name'),
      ...(list(values, 'redirect-uri') ? { redirect_uris: list(values, 'redirect-uri') } : {}),
      ...(list(values, 'grant-type') ? { grant_types: list(values, 'grant-type') } : {}),
      ...(str(values, 'auth-method') ? { token_endpoint_auth_method: str(values, 'auth-method') } : {}),
      ...(str(values, 'scope') ? { scope: str(values, 'scope') } : {}),
      ...(str(values, 'client-id') ? { client_id: str(values, 'client-id') } : {}),
      ...(str(values, 'id-token-alg') ? { id_token_signed_response_alg: str(values, 'id-token-alg') } : {}),
      ...(str(values, 'application-type') ? { application_type: str(values, 'application-type') } : {}),
    }, 'client');
    const { client, clientSecret } = await admin.clientAdmin.create(body, actorFor(deps));
    const lines = [`created client ${client.client_id} (${client.application_type}, ${client.token_endpoint_auth_method}) grants: ${(client.grant_types ?? []).join(' ')}`];
    if (clientSecret) lines.push(`client_secret (shown once): ${clientSecret}`);
    return { lines, json: { ...client, ...(clientSecret ? { client_secret: clientSecret } : {}) } };
  },

  async 'create-service-account'({ values, admin, deps }) {
    const name = parseWith(printable(100).min(1), required(values, 'name'), 'name');
    const scopes = list(values, 'scopes');
    if (!scopes?.length) throw new UsageError('--scopes is required');
    const path = resolve(required(values, 'key-file'));
    const alg = str(values, 'alg');
    if (alg && !(SIGNING_ALGS as readonly string[]).includes(alg)) throw new UsageError('--alg must be RS256, PS256, ES256 or EdDSA');
    // Claim the path first (exclusive create, owner-only): nothing is created if it is taken.
    let file;
    try {
      file = await open(path, 'wx', 0o600);
    } catch (err) {
      throw new AppError('CONFLICT', { message: `cannot create ${path}: ${(err as NodeJS.ErrnoException).code === 'EEXIST' ? 'the file exists' : (err as Error).message}` });
    }
    try {
      const { account, keyFile } = await admin.serviceAccounts.create({ name, scopes, ...(alg ? { alg: alg as 'RS256' } : {}) }, actorFor(deps));
      if (!keyFile) throw new Error('no key file was generated');
      await file.writeFile(`${JSON.stringify(keyFile, null, 2)}\n`);
      await file.close();
      return {
        lines: [`created service account ${account.id} (${account.name}) scopes: ${account.scopes.join(' ')}`, `key ${keyFile.key_id} written to ${path} (keep it secret; it is not stored anywhere else)`],
        json: { ...account, keyFilePath: path },
      };
    } catch (err) {
      await file.close().catch(() => undefined);
      await rm(path, { force: true });
      throw err;
    }
  },

  async 'rotate-keys'({ deps }) {
    const result = await rotateSigningKeys(deps, longestTokenLifetimeMs(deps.config, deps.settings.current()), actorFor(deps));
    return {
      lines: [
        `signing keys rotated (version ${result.version}); new kids: ${result.kids.join(' ')}`,
        ...result.retiring.map((k) => `  still published until ${k.retireAt}: ${k.kid}`),
        `running servers switch within KEY_REFRESH_SECONDS (${deps.config.keyRefreshSeconds} s)`,
      ],
      json: result,
    };
  },

  async audit({ values, admin }) {
    const time = (name: string) => {
      const v = str(values, name);
      if (v === undefined) return undefined;
      const ms = /^\d{1,12}$/.test(v) ? Number(v) * 1000 : /^\d{4}-\d\d-\d\d/.test(v) ? Date.parse(v) : Number.NaN;
      if (Number.isNaN(ms)) throw new UsageError(`--${name}: an ISO 8601 date-time or epoch seconds`);
      return ms;
    };
    const limit = Number(str(values, 'limit') ?? 20);
    if (!Number.isInteger(limit) || limit < 1 || limit > 500) throw new UsageError('--limit must be 1 to 500');
    const outcome = str(values, 'outcome');
    if (outcome && outcome !== 'success' && outcome !== 'failure') throw new UsageError('--outcome must be success or failure');
    const { events } = await admin.auditQuery.query({
      type: str(values, 'type'), actor: str(values, 'actor'), subject: str(values, 'subject'),
      outcome: outcome as 'success' | 'failure' | undefined, since: time('since'), until: time('until'),
    }, { limit });
    return {
      lines: events.map((e) => [e.time, e.type, e.outcome, `actor=${e.actor}`, e.subject ? `subject=${e.subject}` : '', e.ip ? `ip=${e.ip}` : '', e.details ? JSON.stringify(e.details) : ''].filter(Boolean).join('  ')),
      json: events,
    };
  },
};

/** Turns a domain refusal into one line for the terminal. */
export function describeFailure(err: unknown): { message: string; usage: boolean } {
  if (err instanceof UsageError) return { message: err.message, usage: true };
  if (err instanceof AppError) {
    const details = (err.extra.details as { field: string; message: string }[] | undefined)?.map((d) => `${d.field}: ${d.message}`).join('; ');
    const required = err.extra.required_scope ? ` (${String(err.extra.required_scope)})` : '';
    return { message: `${err.publicMessage}${details ? ` - ${details}` : ''}${required}`, usage: err.code === 'VALIDATION_FAILED' };
  }
  if (err instanceof StoreUnavailableError) {
    const cause = (err.cause as Error | undefined)?.message;
    return { message: `cannot reach the store (REDIS_URL)${cause ? `: ${cause}` : ''}`, usage: false };
  }
  return { message: (err as Error).message ?? String(err), usage: false };
}
