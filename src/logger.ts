import { pino, type Logger as PinoLogger, type DestinationStream } from 'pino';

export type Logger = PinoLogger;

/** Paths that may hold a secret anywhere in a log object; pino replaces them. */
export const redactedPaths = [
  'password', 'newPassword', 'currentPassword', 'token', 'refreshToken', 'refresh_token', 'access_token', 'id_token',
  'apiKey', 'api_key', 'client_secret', 'clientSecret', 'assertion', 'code', 'code_verifier', 'totp_code', 'secret',
  'authorization', 'cookie', 'set-cookie', 'x-api-key',
  '*.password', '*.token', '*.refreshToken', '*.apiKey', '*.client_secret', '*.secret', '*.assertion', '*.totp_code',
  'req.headers.authorization', 'req.headers.cookie', 'req.headers["x-api-key"]', 'res.headers["set-cookie"]',
];

/**
 * Standard output for log lines. With bufferMs > 0, lines are gathered (up to 4 KiB) and
 * written at most bufferMs later: one write for many lines instead of one per request (a
 * write to a file or pipe costs about as much as the rest of a log line). Buffered lines
 * are written out when the process exits (normally, on a signal we handle, or on a crash
 * that runs exit handlers); only a process killed outright (SIGKILL, the OOM killer) can
 * lose the last bufferMs of lines. 0 writes each line as it is logged.
 */
export function stdoutDestination(bufferMs: number): DestinationStream {
  if (bufferMs <= 0) return pino.destination({ dest: 1, sync: true });
  const stream = pino.destination({ dest: 1, sync: false, minLength: 4096 });
  const timer = setInterval(() => {
    try {
      stream.flush();
    } catch {
      // Not open yet, or a write in progress: the next tick writes it.
    }
  }, bufferMs);
  timer.unref();
  return stream;
}

export function createLogger(level: string, destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'nopesight-auth' },
      redact: { paths: redactedPaths, censor: '[redacted]' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    destination,
  );
}

/**
 * Query values that look like a credential whatever the parameter is called (a client that
 * puts its token in ?jwt= or ?bearer= is refused, but the line must not keep it): JWTs, API
 * keys, and long opaque tokens (refresh tokens, codes and secrets are 32+ such characters).
 */
const CREDENTIAL_VALUE = /^(eyJ[\w-]*\.[\w-]*\.[\w-]*|nsa_\w+|[\w.~+/-]{32,}={0,2})$/;

/** Strips credentials from a URL before it is logged (?api_key=, ?code=, ?token=..., and any value shaped like one). */
export function safePath(url: string): string {
  const q = url.indexOf('?');
  if (q === -1) return url;
  const params = new URLSearchParams(url.slice(q + 1));
  for (const name of [...params.keys()]) {
    const secretName = /key|token|code|secret|password|assertion|state|nonce/i.test(name);
    if (secretName || params.getAll(name).some((value) => CREDENTIAL_VALUE.test(value.trim()))) params.set(name, '[redacted]');
  }
  const rest = params.toString();
  return url.slice(0, q) + (rest ? `?${rest}` : '');
}
