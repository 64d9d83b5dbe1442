import { STATUS_CODES, type Server, type ServerResponse } from 'node:http';
import type { Server as HttpsServer } from 'node:https';
import type { Socket } from 'node:net';
import type { Logger } from '../logger.ts';
import { randomAlphanumeric } from '../domain/ids.ts';
import { API_CSP, HSTS } from './koa-security-headers.ts';
import { AppError, type ErrorCode } from '../errors/app-error.ts';

/** What Node's HTTP parser refuses before any app code runs, by its error code; anything else is MALFORMED_REQUEST. */
const REFUSALS: Record<string, ErrorCode> = {
  HPE_HEADER_OVERFLOW: 'HEADERS_TOO_LARGE',
  HPE_CHUNK_EXTENSIONS_OVERFLOW: 'PAYLOAD_TOO_LARGE',
  ERR_HTTP_REQUEST_TIMEOUT: 'REQUEST_TIMEOUT',
};

/** The raw answer to a request Node's parser refused: the contract's body, a new request id, the API's security headers (HSTS over TLS), and the connection closed. */
export function clientErrorResponse(parserError: string | undefined, requestId: string, overTls: boolean): { error: AppError; raw: string } {
  const error = new AppError((parserError && REFUSALS[parserError]) || 'MALFORMED_REQUEST');
  const body = JSON.stringify(error.toBody(requestId));
  const head = [
    `HTTP/1.1 ${error.status} ${STATUS_CODES[error.status]}`,
    'Connection: close',
    'Content-Type: application/json; charset=utf-8',
    `Content-Length: ${Buffer.byteLength(body)}`,
    `X-Request-ID: ${requestId}`,
    'X-Content-Type-Options: nosniff',
    'Referrer-Policy: no-referrer',
    'X-Frame-Options: DENY',
    `Content-Security-Policy: ${API_CSP}`,
    'Cache-Control: no-store',
    'Pragma: no-cache',
    ...(overTls ? [`Strict-Transport-Security: ${HSTS}`] : []),
  ];
  return { error, raw: `${head.join('\r\n')}\r\n\r\n${body}` };
}

/**
 * Node answers a request its parser refuses (headers over the limit, a malformed request
 * line, a header timeout) with a bare status line: no body, no request id. This answers it
 * as every other error is answered, and logs one line with that id (nothing of the request
 * itself, which may hold a credential). As Node does, only when no answer on the
 * connection has started; the connection is destroyed either way, not just ended: the HTTP
 * server keeps connections half-open, so an ended socket would still read the rest of a
 * slow body and let the request it was told timed out run after all.
 */
export function answerClientErrors(server: Server | HttpsServer, logger: Logger): void {
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // The response in flight on this connection, if any (Node's own handler looks at the same field).
    const inFlight = (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage;
    if (err.code === 'ECONNRESET' || !socket.writable || inFlight?.headersSent) {
      socket.destroy();
      return;
    }
    const requestId = `req_${randomAlphanumeric(20)}`;
    const answer = clientErrorResponse(err.code, requestId, 'encrypted' in socket);
    logger.info({ requestId, status: answer.error.status, errorCode: answer.error.code, parserError: err.code }, 'request refused by the HTTP parser');
    socket.write(answer.raw);
    socket.destroy();
  });
}
