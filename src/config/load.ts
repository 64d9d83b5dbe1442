import { readFileSync, existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { configSchema, settings, type Config } from './schema.ts';

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

function readJson(path: string): Record<string, unknown> {
  try {
    return JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;
  } catch (err) {
    throw new ConfigError(`config file ${path}: ${(err as Error).message}`);
  }
}

/**
 * Builds the configuration: config/default.json, then the file named by CONFIG_FILE
 * (or config/local.json when present), then environment variables. A bad value throws a
 * ConfigError whose one-line message names the setting and its variable.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, configDir = resolve(import.meta.dirname, '../../config')): Config {
  const layers: Record<string, unknown>[] = [];
  const defaultFile = resolve(configDir, 'default.json');
  if (existsSync(defaultFile)) layers.push(readJson(defaultFile));
  const extraFile = env.CONFIG_FILE ? resolve(env.CONFIG_FILE) : resolve(configDir, 'local.json');
  if (env.CONFIG_FILE && !existsSync(extraFile)) throw new ConfigError(`CONFIG_FILE: ${extraFile} does not exist`);
  if (existsSync(extraFile)) layers.push(readJson(extraFile));

  const fromEnv: Record<string, unknown> = {};
  for (const [key, setting] of Object.entries(settings)) {
    const value = setting.env ? env[setting.env] : undefined;
    if (value !== undefined && value !== '') fromEnv[key] = value;
  }
  const merged = Object.assign({}, ...layers, fromEnv) as Record<string, unknown>;
  // Without an explicit PUBLIC_URL, the issuer follows the listen port.
  if (!env.PUBLIC_URL && fromEnv.port !== undefined && !layers.some((l) => 'publicUrl' in l && l.publicUrl !== 'http://localhost:3000')) {
    merged.publicUrl = `http://localhost:${String(fromEnv.port)}`;
  }
  return parseConfig(merged);
}

export function parseConfig(raw: Record<string, unknown>): Config {
  const result = configSchema.safeParse(raw);
  if (!result.success) {
    const issue = result.error.issues[0];
    const key = String(issue.path[0] ?? '');
    const envName = (settings as Record<string, { env?: string }>)[key]?.env;
    const where = issue.path.join('.') + (envName ? ` (${envName})` : '');
    throw new ConfigError(`invalid setting ${where || '(root)'}: ${issue.message}`);
  }
  // The demo client is for trying the server out: unless asked for, not next to real data.
  const parsed = result.data as Omit<Config, 'demoClient'> & { demoClient?: boolean };
  const config: Config = { ...parsed, demoClient: parsed.demoClient ?? parsed.redisUrl === undefined };
  if (config.redisCluster && config.redisSentinelName) {
    throw new ConfigError('invalid setting redisSentinelName (REDIS_SENTINEL_NAME): cannot be combined with REDIS_CLUSTER');
  }
  return config;
}

/** The audience access tokens are issued for. */
export const apiAudienceOf = (config: Config): string => config.apiAudience ?? config.publicUrl;
