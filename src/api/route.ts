import type Router from '@koa/router';
import type { Context, Middleware } from 'koa';
import { z } from 'zod';
import { AppError, validationFailed } from '../errors/app-error.ts';
import type { CredentialResolver } from '../http/credentials.ts';
import { requireScope } from '../http/credentials.ts';
import type { Principal } from '../http/principal.ts';
import { parseBody } from '../http/koa-body.ts';
import { FIRST_PARTY_CLIENT_ID } from '../oidc/first-party-tokens.ts';

export const FIRST_PARTY_ONLY_MESSAGE = 'This endpoint needs a token from POST /v1/auth/login (not one issued to another app)';

type Schema = z.ZodType;
type Infer<S> = S extends Schema ? z.output<S> : undefined;

export interface RouteInput<B, Q, P> {
  body: B;
  query: Q;
  params: P;
  /** Set when the route requires a credential. */
  principal: Principal;
}

/**
 * One /v1 route, declared once: the same schemas validate requests and describe the
 * route in the OpenAPI document, so the two cannot drift apart.
 */
export interface RouteSpec<B extends Schema | undefined = Schema | undefined, Q extends Schema | undefined = Schema | undefined, P extends Schema | undefined = Schema | undefined> {
  method: 'get' | 'post' | 'put' | 'patch' | 'delete';
  /** Path under /v1 in Koa form, e.g. /auth/api-keys/:id */
  path: string;
  summary: string;
  tag: string;
  /** 'none': public; 'required': a valid credential (bearer token or API key). */
  auth: 'none' | 'required';
  /** Scope the credential must hold. */
  scope?: string;
  /** Credential kinds allowed (default: all). */
  principalTypes?: Principal['type'][];
  /**
   * Only a token of the first-party login (POST /v1/auth/login) may call it: a third-party
   * app holding a token for the same user may not (it must not outlive its grant through an
   * API key, or put its own authenticator on the account).
   */
  firstPartyOnly?: boolean;
  body?: B;
  /** Body encoding (default json). */
  bodyType?: 'json' | 'form';
  query?: Q;
  params?: P;
  responses: Record<number, { description: string; schema?: Schema }>;
  handler(ctx: Context, input: RouteInput<Infer<B>, Infer<Q>, Infer<P>>): Promise<void> | void;
}

export const route = <B extends Schema | undefined = undefined, Q extends Schema | undefined = undefined, P extends Schema | undefined = undefined>(
  spec: RouteSpec<B, Q, P>,
): RouteSpec => spec as unknown as RouteSpec;

/** Text a person typed (a name, a description): trimmed, at most `max` characters, no control characters. */
export const printable = (max: number) => z.string().trim().max(max).regex(/^[^\p{Cc}]*$/u, 'must not contain control characters');

export function parseWith<S extends Schema>(schema: S, value: unknown, where: string): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  throw validationFailed(result.error.issues.map((issue) => ({
    field: issue.path.length ? issue.path.join('.') : where,
    message: issue.message,
  })));
}

function checkContentType(ctx: Context, spec: RouteSpec): void {
  // An empty body (Content-Length: 0, as many clients send on a bodiless POST) has no type to check.
  if (!spec.body || ctx.request.length === 0) return;
  const wanted = spec.bodyType === 'form' ? 'application/x-www-form-urlencoded' : 'application/json';
  // ctx.is(): null when there is no body at all, false when it has another type (chunked bodies included).
  if (ctx.is(wanted) === false) throw new AppError('UNSUPPORTED_MEDIA_TYPE', { message: `Content-Type must be ${wanted}` });
}

export interface MountOptions {
  resolveCredential: CredentialResolver;
  realm: string;
}

/** Adds routes to a router: content type, credential, scope, validation, then the handler. */
export function mountRoutes(router: Router, specs: RouteSpec[], options: MountOptions): void {
  const body = parseBody();
  // A route without a body schema never reads the body (GET /v1/auth/verify stays cheap).
  const noBody: Middleware = (_ctx, next) => next();
  for (const spec of specs) {
    router[spec.method](spec.path, async (ctx, next) => {
      checkContentType(ctx, spec);
      await next();
    }, spec.body ? body : noBody, async (ctx) => {
      let principal: Principal | undefined;
      if (spec.auth === 'required') {
        principal = await options.resolveCredential(ctx);
        if (spec.principalTypes && !spec.principalTypes.includes(principal.type)) {
          throw new AppError('FORBIDDEN', { message: `This endpoint needs a ${spec.principalTypes.join(' or ')} credential` });
        }
        if (spec.firstPartyOnly && principal.clientId !== FIRST_PARTY_CLIENT_ID) {
          throw new AppError('FORBIDDEN', { message: FIRST_PARTY_ONLY_MESSAGE });
        }
        if (spec.scope) requireScope(principal, spec.scope, options.realm);
      }
      const input = {
        body: spec.body ? parseWith(spec.body, ctx.request.body ?? {}, 'body') : undefined,
        query: spec.query ? parseWith(spec.query, ctx.query, 'query') : undefined,
        params: spec.params ? parseWith(spec.params, ctx.params, 'path') : undefined,
        principal: principal as Principal,
      };
      await spec.handler(ctx, input as never);
    });
  }
}
