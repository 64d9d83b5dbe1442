import type { Context } from 'koa';
import type { RequestFacts } from '../domain/audit.ts';

/** Where a request came from, for the audit trail (IP as Koa sees it, honouring TRUST_PROXY). */
export const requestFacts = (ctx: Context): RequestFacts => ({
  ip: ctx.ip || undefined,
  requestId: typeof ctx.state.requestId === 'string' ? ctx.state.requestId : undefined,
  // X-Client-Version as koa-client-version.ts kept it: short and plain, else nothing.
  clientVersion: typeof ctx.state.clientVersion === 'string' ? ctx.state.clientVersion : undefined,
});
