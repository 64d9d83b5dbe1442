/**
 * The one error type of the /v1 API. Its code picks the status and the public message;
 * nothing else about it (cause, internal message) ever reaches a client.
 */
export const errorCodes = {
  VALIDATION_FAILED: { status: 400, message: 'Validation failed' },
  MALFORMED_REQUEST: { status: 400, message: 'Malformed HTTP request' },
  AUTH_FAILED: { status: 401, message: 'Authentication failed' },
  MFA_REQUIRED: { status: 401, message: 'Multi-factor authentication required' },
  INVALID_TOKEN: { status: 401, message: 'Invalid token' },
  INSUFFICIENT_SCOPE: { status: 403, message: 'Insufficient permissions' },
  FORBIDDEN: { status: 403, message: 'Forbidden' },
  NOT_FOUND: { status: 404, message: 'Not found' },
  METHOD_NOT_ALLOWED: { status: 405, message: 'Method not allowed' },
  REQUEST_TIMEOUT: { status: 408, message: 'Request not received in time' },
  CONFLICT: { status: 409, message: 'Conflict' },
  PAYLOAD_TOO_LARGE: { status: 413, message: 'Request body too large' },
  UNSUPPORTED_MEDIA_TYPE: { status: 415, message: 'Unsupported media type' },
  HEADERS_TOO_LARGE: { status: 431, message: 'Request header fields too large' },
  ACCOUNT_LOCKED: { status: 429, message: 'Too many failed attempts, try again later' },
  RATE_LIMITED: { status: 429, message: 'Rate limit exceeded' },
  UPGRADE_REQUIRED: { status: 426, message: 'Client version too old' },
  SERVICE_UNAVAILABLE: { status: 503, message: 'Service temporarily unavailable' },
  INTERNAL_ERROR: { status: 500, message: 'Internal server error' },
} as const;

export type ErrorCode = keyof typeof errorCodes;

export interface AppErrorOptions {
  /** Overrides the table's public message; must be safe to show to anyone. */
  message?: string;
  /** Extra public fields merged into the body (e.g. details, required_scope). */
  extra?: Record<string, unknown>;
  /** Extra response headers (e.g. Retry-After, WWW-Authenticate). */
  headers?: Record<string, string>;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly publicMessage: string;
  readonly extra: Record<string, unknown>;
  readonly headers: Record<string, string>;

  constructor(code: ErrorCode, options: AppErrorOptions = {}) {
    super(options.message ?? errorCodes[code].message, { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.status = errorCodes[code].status;
    this.publicMessage = options.message ?? errorCodes[code].message;
    this.extra = options.extra ?? {};
    this.headers = options.headers ?? {};
  }

  toBody(requestId: string): Record<string, unknown> {
    return { error: this.publicMessage, code: this.code, ...this.extra, request_id: requestId };
  }
}

export function assertThat(condition: unknown, code: ErrorCode, options?: AppErrorOptions): asserts condition {
  if (!condition) throw new AppError(code, options);
}

export interface FieldProblem { field: string; message: string }

export const validationFailed = (details: FieldProblem[], message?: string): AppError =>
  new AppError('VALIDATION_FAILED', { message, extra: { details } });
