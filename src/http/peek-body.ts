import type { IncomingMessage } from 'node:http';

/**
 * The request body, when it has fully arrived and is at most `limit` bytes, read without
 * consuming it: the bytes are put back at once (same tick, before the stream can end), so
 * whoever reads the request next gets it whole. Undefined when the body is still on its
 * way, has no Content-Length, is larger, or someone has started reading it.
 */
export function peekCompleteBody(req: IncomingMessage, limit: number): Buffer | undefined {
  const declared = Number(req.headers['content-length']);
  if (!Number.isInteger(declared) || declared <= 0 || declared > limit) return undefined;
  if (!req.complete || req.readableFlowing === true || req.readableEncoding || req.readableLength !== declared) return undefined;
  const body = req.read() as Buffer | null;
  if (body === null) return undefined;
  req.unshift(body);
  return body.length === declared ? body : undefined;
}
