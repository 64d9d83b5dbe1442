import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Deps } from './deps.ts';
import type { Config } from './config/schema.ts';
import { createApp, type App } from './http/app.ts';
import { answerClientErrors } from './http/client-errors.ts';

export interface RunningServer {
  app: App;
  server: Server | HttpsServer;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

/** The certificate and key when TLS_CERT_FILE and TLS_KEY_FILE are set; both or neither. */
function tlsOptions(config: Pick<Config, 'tlsCertFile' | 'tlsKeyFile'>): { cert: Buffer; key: Buffer } | undefined {
  const { tlsCertFile, tlsKeyFile } = config;
  if (!tlsCertFile && !tlsKeyFile) return undefined;
  if (!tlsCertFile || !tlsKeyFile) throw new Error('TLS_CERT_FILE and TLS_KEY_FILE must be set together');
  return { cert: readFileSync(tlsCertFile), key: readFileSync(tlsKeyFile) };
}

/**
 * Bounds on slow clients (slow-loris): headers within 10 s (or REQUEST_TIMEOUT if shorter),
 * the whole request within REQUEST_TIMEOUT; then Node answers 408 and closes. Node checks
 * these on an interval (30 s by default); a quarter of the header bound keeps them tight.
 */
function slowClientLimits(config: Pick<Config, 'requestTimeout'>) {
  const requestTimeout = config.requestTimeout * 1000;
  const headersTimeout = Math.min(10_000, requestTimeout);
  return { requestTimeout, headersTimeout, connectionsCheckingInterval: Math.max(250, headersTimeout / 4) };
}

export async function startServer(deps: Deps, options: { port?: number; host?: string } = {}): Promise<RunningServer> {
  const app = createApp(deps);
  const tls = tlsOptions(deps.config);
  const server = tls ? createHttpsServer({ ...tls, ...slowClientLimits(deps.config) }, app.koa.callback()) : createServer(slowClientLimits(deps.config), app.koa.callback());
  server.keepAliveTimeout = 5_000;
  answerClientErrors(server, deps.logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? deps.config.port, options.host ?? deps.config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  // Responses not yet sent when draining starts tell their client to close the connection,
  // so no keep-alive connection outlives the drain.
  const inFlight = new Set<ServerResponse>();
  let draining = false;
  server.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    if (draining) res.setHeader('Connection', 'close');
    inFlight.add(res);
    res.once('close', () => inFlight.delete(res));
  });
  return {
    app,
    server,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        draining = true;
        for (const res of inFlight) if (!res.headersSent) res.setHeader('Connection', 'close');
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
