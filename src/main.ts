import { loadConfig, ConfigError } from './config/load.ts';
import { configWarnings } from './config/warnings.ts';
import { createLogger, stdoutDestination } from './logger.ts';
import { systemClock } from './clock.ts';
import { createStore } from './store/create-store.ts';
import { buildDeps } from './deps.ts';
import { bootstrap, describeBootstrap } from './bootstrap.ts';
import { startServer } from './server.ts';

// The only module with side effects: config → store → deps → bootstrap → listen → shutdown.
async function main(): Promise<void> {
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`nopesight-auth: ${err.message}\n`);
      process.exit(2);
    }
    throw err;
  }
  const logger = createLogger(config.logLevel, stdoutDestination(config.logBufferMs));
  for (const warning of configWarnings(config)) logger.warn(warning);
  const store = createStore(config, systemClock, logger);
  const deps = await buildDeps({ config, clock: systemClock, logger, store });
  const report = await bootstrap(deps);
  const running = await startServer(deps);
  deps.keyRing.start();
  // The banner goes straight to stdout: log lines gathered before it go first.
  logger.flush();
  for (const line of describeBootstrap(report, config.publicUrl)) process.stdout.write(`${line}\n`);
  logger.info({ port: config.port, store: store.kind }, 'ready');

  let stopping = false;
  const shutdown = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.info({ signal }, 'shutting down: finishing in-flight requests');
    // Requests still running after SHUTDOWN_TIMEOUT are cut off.
    const force = setTimeout(() => {
      logger.error({ timeout_seconds: config.shutdownTimeout }, 'in-flight requests did not finish in time; exiting');
      process.exit(1);
    }, config.shutdownTimeout * 1000);
    force.unref();
    deps.keyRing.stop();
    await running.close();
    await store.close();
    logger.info('stopped');
    process.exit(0);
  };
  process.on('SIGTERM', () => void shutdown('SIGTERM'));
  process.on('SIGINT', () => void shutdown('SIGINT'));
}

main().catch((err: Error) => {
  const cause = err.cause instanceof Error ? ` (${err.cause.message})` : '';
  process.stderr.write(`nopesight-auth: failed to start: ${err.message}${cause}\n`);
  process.exit(1);
});
