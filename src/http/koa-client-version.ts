import type { Middleware } from 'koa';
import { AppError } from '../errors/app-error.ts';

/** What we keep of X-Client-Version for logs and audit: short and plain, else nothing. */
const SANE_CLIENT_VERSION = /^[A-Za-z0-9._+-]{1,64}$/;
/** major[.minor[.patch]][-prerelease][+build], optionally with a leading v. */
const VERSION = /^v?(\d{1,9})(?:\.(\d{1,9}))?(?:\.(\d{1,9}))?(-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/;

export interface ParsedVersion { parts: [number, number, number]; prerelease: boolean }

export function parseVersion(value: string): ParsedVersion | null {
  const m = VERSION.exec(value);
  if (!m) return null;
  return { parts: [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)], prerelease: m[4] !== undefined };
}

/** Negative when a is older than b. A pre-release comes before its release (1.2.0-rc.1 < 1.2.0), as in SemVer. */
export function compareVersions(a: ParsedVersion, b: ParsedVersion): number {
  for (let i = 0; i < 3; i++) if (a.parts[i] !== b.parts[i]) return a.parts[i] - b.parts[i];
  return Number(b.prerelease) - Number(a.prerelease);
}

export const isVersion = (value: string): boolean => parseVersion(value) !== null;

/**
 * Records the caller's X-Client-Version (ctx.state.clientVersion, for the request log and
 * the audit trail) and, when MIN_CLIENT_VERSION is set, refuses a client that declares an
 * older version (or one that cannot be compared) with 426 UPGRADE_REQUIRED. Callers that
 * send no version (browsers, OAuth libraries) are not affected.
 */
export function clientVersion(options: { minimum?: string }): Middleware {
  const minimum = options.minimum ? parseVersion(options.minimum) : null;
  if (options.minimum && !minimum) throw new Error(`minimum client version ${options.minimum} is not a version`);
  return async (ctx, next) => {
    const declared = ctx.get('x-client-version');
    ctx.state.clientVersion = SANE_CLIENT_VERSION.test(declared) ? declared : undefined;
    if (minimum && declared) {
      const version = parseVersion(declared);
      if (!version || compareVersions(version, minimum) < 0) {
        throw new AppError('UPGRADE_REQUIRED', {
          message: `This client is too old: version ${options.minimum} or newer is required`,
          extra: { minimum_version: options.minimum },
        });
      }
    }
    await next();
  };
}
