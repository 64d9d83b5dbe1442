import { validationFailed } from '../errors/app-error.ts';
import { Readable } from 'node:stream';
import { z } from 'zod';
import type { AdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { auditAdminChange } from '../domain/admin-actor.ts';
import { isStreamId, type AuditFilter } from '../domain/audit-query.ts';
import { actorOf } from './admin-actor.ts';
import { route, type RouteSpec } from './route.ts';

const NDJSON = 'application/x-ndjson';
/** Events one export writes at most (the stream itself is capped by AUDIT_MAX_ENTRIES). */
const EXPORT_MAX = 1_000_000;

const time = z.string().max(40).transform((value, ctx) => {
  const ms = /^\d{1,12}$/.test(value) ? Number(value) * 1000 : /^\d{4}-\d\d-\d\d/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(ms)) {
    ctx.addIssue({ code: 'custom', message: 'an ISO 8601 date-time (2025-01-31T12:00:00Z) or epoch seconds' });
    return z.NEVER;
  }
  return ms;
});

const auditEvent = z.object({
  id: z.string().describe('stream id; also the cursor position'),
  time: z.string(),
  type: z.string(),
  outcome: z.enum(['success', 'failure']),
  actor: z.string(),
  subject: z.string().optional(),
  ip: z.string().optional(),
  requestId: z.string().optional(),
  clientVersion: z.string().optional(),
  details: z.record(z.string(), z.unknown()).optional(),
});

const query = z.object({
  type: z.string().max(100).regex(/^[A-Za-z0-9._-]+\*?$/, 'an event type, or a prefix ending in *').optional().describe('exact type, or a prefix: login.*'),
  actor: z.string().max(200).optional(),
  subject: z.string().max(200).optional(),
  outcome: z.enum(['success', 'failure']).optional(),
  since: time.optional().describe('ISO 8601 date-time or epoch seconds, inclusive'),
  until: time.optional().describe('ISO 8601 date-time or epoch seconds, inclusive'),
  cursor: z.string().refine(isStreamId, 'the nextCursor of a previous page').optional(),
  limit: z.coerce.number().int().min(1).max(EXPORT_MAX).optional().describe('page size (1-500, default 50); with format=jsonl, events to export at most'),
  format: z.enum(['json', 'jsonl']).optional().describe('jsonl (or Accept: application/x-ndjson): every matching event as JSON lines'),
});

/** /v1/admin/audit (admin.audit): search the audit trail, newest first, or export it as JSON lines. */
export function adminAuditRoutes(deps: Pick<Deps, 'audit'>, admin: Pick<AdminServices, 'auditQuery'>): RouteSpec[] {
  const { auditQuery } = admin;

  async function* exportLines(filter: AuditFilter, max: number, cursor?: string): AsyncGenerator<string> {
    let written = 0;
    let next: string | null | undefined = cursor;
    do {
      const page = await auditQuery.query(filter, { cursor: next ?? undefined, limit: Math.min(500, max - written) });
      for (const event of page.events) yield `${JSON.stringify(event)}\n`;
      written += page.events.length;
      next = page.nextCursor;
    } while (next && written < max);
  }

  return [
    route({
      method: 'get',
      path: '/admin/audit',
      summary: 'Search the audit trail (newest first, cursor paging), or export it as JSON lines',
      tag: 'Admin: audit',
      auth: 'required',
      scope: 'admin.audit',
      query,
      responses: {
        200: {
          description: 'A page of events; with format=jsonl an application/x-ndjson stream of events',
          schema: z.object({ events: z.array(auditEvent), nextCursor: z.string().nullable().describe('pass as cursor for older events; null at the end') }),
        },
      },
      async handler(ctx, { query: q, principal }) {
        const filter: AuditFilter = { type: q.type, actor: q.actor, subject: q.subject, outcome: q.outcome, since: q.since, until: q.until };
        const wantsLines = q.format === 'jsonl' || (q.format === undefined && ctx.accepts('application/json', NDJSON) === NDJSON);
        if (!wantsLines) {
          // A page holds 1-500, as for the users and clients lists: more is refused, not cut.
          if ((q.limit ?? 50) > 500) throw validationFailed([{ field: 'limit', message: 'a page holds at most 500 events (an export, format=jsonl, takes more)' }]);
          ctx.body = await auditQuery.query(filter, { cursor: q.cursor, limit: q.limit ?? 50 });
          return;
        }
        await auditAdminChange(deps.audit, actorOf(ctx, principal), 'admin.audit.exported', undefined, {
          filter: Object.entries(filter)
            .filter(([, v]) => v !== undefined)
            .map(([k, v]) => `${k}=${k === 'since' || k === 'until' ? new Date(v as number).toISOString() : String(v)}`),
        });
        ctx.type = NDJSON;
        ctx.set('Content-Disposition', 'attachment; filename="audit.jsonl"');
        ctx.body = Readable.from(exportLines(filter, q.limit ?? EXPORT_MAX, q.cursor));
      },
    }),
  ];
}
