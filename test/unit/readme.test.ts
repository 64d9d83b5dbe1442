import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configTable } from '../../src/config/table.ts';

describe('README', () => {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

  it('shows the configuration table generated from the schema (run: node scripts/config-table.ts --write)', () => {
    expect(readme).toContain(configTable());
  });

  it('keeps the two-command quick start', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toMatch(/^npm test\b/m);
  });
});
