import { configSchema, settings } from './schema.ts';

const show = (v: unknown) => (v === undefined ? '(unset)' : Array.isArray(v) ? (v.length ? v.join(',') : '(none)') : String(v));

/** The README's configuration table, generated from the schema so the two cannot drift. */
export function configTable(): string {
  const defaults = configSchema.parse({}) as Record<string, unknown>;
  const rows = Object.entries(settings)
    .filter(([, s]) => s.env)
    .map(([key, s]) => `| \`${s.env}\` | \`${key}\` | ${s.doc.replace(/\|/g, '\\|')} | \`${show(defaults[key])}\` |`);
  return ['| variable | config file key | meaning | default |', '|---|---|---|---|', ...rows].join('\n') + '\n';
}
