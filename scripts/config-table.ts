// Prints the README's configuration table from src/config/schema.ts;
// with --write, puts it between the config-table markers of README.md.
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configTable } from '../src/config/table.ts';

const table = configTable();
if (process.argv.includes('--write')) {
  const path = resolve(import.meta.dirname, '../README.md');
  const readme = readFileSync(path, 'utf8');
  const next = readme.replace(/(<!-- config-table:start -->\n)[\s\S]*?(<!-- config-table:end -->)/, `$1${table}$2`);
  writeFileSync(path, next);
} else {
  process.stdout.write(table);
}
