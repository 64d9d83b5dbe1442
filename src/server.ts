import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Deps } from './deps.ts';
import { createApp, type App } from './http/app.ts';

export interface RunningServer {
  app: App;
  server: Server;
  url: string;
  /** Stops accepting connections, lets in-flight requests finish, then resolves. */
  close(): Promise<void>;
}

export async function startServer(deps: Deps, options: { port?: number; host?: string } = {}): Promise<RunningServer> {
  const app = createApp(deps);
  const server = createServer(app.koa.callback());
  // Bound slow clients: headers within 10 s, whole request within 30 s.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;
  server.keepAliveTimeout = 5_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? deps.config.port, options.host ?? deps.config.host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    app,
    server,
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
