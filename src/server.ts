import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer, type Server as HttpsServer } from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import type { Deps } from './deps.ts';
import type { Config } from './config/schema.ts';
import { createApp, type App } from './http/app.ts';

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

export async function startServer(deps: Deps, options: { port?: number; host?: string } = {}): Promise<RunningServer> {
  const app = createApp(deps);
  const tls = tlsOptions(deps.config);
  const server = tls ? createHttpsServer(tls, app.koa.callback()) : createServer(app.koa.callback());
  // Bound slow clients: headers within 10 s, whole request within 30 s.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
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
