import { parseArgs } from 'node:util';
import type { Store } from '../store/store.ts';
import type { Values } from './commands.ts';
import { USAGE } from './usage.ts';

// `nopesight-auth <command>`: administration against the server's own store. The server's
// modules load only once the arguments are known to be good, so help and usage errors
// answer at once.

const options = {
  email: { type: 'string' },
  name: { type: 'string' },
  scopes: { type: 'string' },
  'password-stdin': { type: 'boolean' },
  invite: { type: 'boolean' },
  'redirect-uri': { type: 'string', multiple: true },
  'grant-type': { type: 'string', multiple: true },
  'auth-method': { type: 'string' },
  scope: { type: 'string' },
  'client-id': { type: 'string' },
  'id-token-alg': { type: 'string' },
  'application-type': { type: 'string' },
  'key-file': { type: 'string' },
  alg: { type: 'string' },
  type: { type: 'string' },
  actor: { type: 'string' },
  subject: { type: 'string' },
  outcome: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Which options each command takes (besides --json and --help). */
const accepted: Record<string, string[]> = {
  'create-admin': ['email', 'name', 'password-stdin'],
  'create-user': ['email', 'name', 'scopes', 'password-stdin', 'invite'],
  'create-client': ['name', 'redirect-uri', 'grant-type', 'auth-method', 'scope', 'client-id', 'id-token-alg', 'application-type'],
  'create-service-account': ['name', 'scopes', 'key-file', 'alg'],
  'rotate-keys': [],
  audit: ['type', 'actor', 'subject', 'outcome', 'since', 'until', 'limit'],
};

const EXIT = { ok: 0, failed: 1, usage: 2 } as const;

function fail(message: string, code: number): number {
  process.stderr.write(`nopesight-auth: ${message}\n`);
  if (code === EXIT.usage) process.stderr.write('Run "nopesight-auth help" for usage.\n');
  return code;
}

async function readPassword(): Promise<string> {
  if (process.stdin.isTTY) process.stderr.write('Password: ');
  let text = '';
  for await (const chunk of process.stdin) {
    text += String(chunk);
    if (text.includes('\n')) break;
  }
  return text.split(/\r?\n/)[0];
}

async function main(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options, allowPositionals: true, strict: true });
  } catch (err) {
    return fail((err as Error).message, EXIT.usage);
  }
  const [command, ...extra] = parsed.positionals;
  if (!command || command === 'help' || parsed.values.help) {
    // Asked for: stdout and success; no command at all: a usage error.
    (command || parsed.values.help ? process.stdout : process.stderr).write(USAGE);
    return command || parsed.values.help ? EXIT.ok : EXIT.usage;
  }
  if (!Object.hasOwn(accepted, command)) return fail(`unknown command "${command}"`, EXIT.usage);
  if (extra.length) return fail(`unexpected argument "${extra[0]}"`, EXIT.usage);
  const values = parsed.values as Values;
  const stray = Object.keys(values).filter((k) => values[k] !== undefined && k !== 'json' && !accepted[command].includes(k));
  if (stray.length) return fail(`${command} does not take --${stray[0]}`, EXIT.usage);

  const { ConfigError, loadConfig } = await import('../config/load.ts');
  let config;
  try {
    config = loadConfig();
  } catch (err) {
    if (err instanceof ConfigError) return fail(err.message, EXIT.usage);
    throw err;
  }
  if (!config.redisUrl) {
    return fail('REDIS_URL is not set: the CLI changes the server\'s store, and the in-memory store lives only inside a server process', EXIT.usage);
  }
  // Logs go to stderr so that stdout carries only the command's output; failures are
  // reported once, as one line, by fail().
  const [{ createLogger }, { createStore }, { systemClock }, { buildDeps }, { createAdminServices }, { commands, describeFailure }] = await Promise.all([
    import('../logger.ts'), import('../store/create-store.ts'), import('../clock.ts'), import('../deps.ts'), import('../admin-services.ts'), import('./commands.ts'),
  ]);
  const logger = createLogger('fatal', process.stderr);
  let store: Store | undefined;
  try {
    store = createStore(config, systemClock, logger);
    const deps = await buildDeps({ config, clock: systemClock, logger, store });
    const result = await commands[command]({ deps, admin: createAdminServices(deps), values, readPassword });
    if (values.json) {
      if (command === 'audit') for (const event of result.json as unknown[]) process.stdout.write(`${JSON.stringify(event)}\n`);
      else process.stdout.write(`${JSON.stringify(result.json, null, 2)}\n`);
    } else {
      for (const line of result.lines) process.stdout.write(`${line}\n`);
    }
    return EXIT.ok;
  } catch (err) {
    const { message, usage } = describeFailure(err);
    return fail(message, usage ? EXIT.usage : EXIT.failed);
  } finally {
    await store?.close();
  }
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: Error) => {
    process.stderr.write(`nopesight-auth: ${err.message}\n`);
    process.exit(EXIT.failed);
  },
);
