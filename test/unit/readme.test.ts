import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { configTable } from '../../src/config/table.ts';
import { scenarios } from '../../bench/scenarios/index.ts';

describe('README', () => {
  const readme = readFileSync(resolve(import.meta.dirname, '../../README.md'), 'utf8');

  it('shows the configuration table generated from the schema (run: node scripts/config-table.ts --write)', () => {
    expect(readme).toContain(configTable());
  });

  it('keeps the two-command quick start', () => {
    expect(readme).toContain('npm install && npm start');
    expect(readme).toMatch(/^npm test\b/m);
  });

  it('lists every bench scenario id, and only those, in the Performance section', () => {
    const ids = scenarios.map((s) => s.id);
    expect(new Set(ids).size).toBe(ids.length);
    const table = readme.slice(readme.indexOf('### Scenarios and baselines'), readme.indexOf('### Latest full run'));
    const listed = [...table.matchAll(/^\| (`[^|]+`) \|/gm)].flatMap((m) => [...m[1].matchAll(/`([^`]+)`/g)].map((x) => x[1]));
    expect(listed.sort()).toEqual([...ids].sort());
  });
});
