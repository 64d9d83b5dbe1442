#!/usr/bin/env node
// Launcher for `npx nopesight-auth`: runs src/cli/main.ts on the project's Node 22 (the
// `node` dev dependency), since the TypeScript sources need Node 22's type stripping.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const pinned = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'node.cmd' : 'node');
const major = Number(process.versions.node.split('.')[0]);
const node = existsSync(pinned) ? pinned : major >= 22 ? process.execPath : null;
if (!node) {
  process.stderr.write(`nopesight-auth: needs Node 22 (found ${process.version}); run "npm install" in ${root} first\n`);
  process.exit(2);
}
const child = spawnSync(node, [join(root, 'src', 'cli', 'main.ts'), ...process.argv.slice(2)], { stdio: 'inherit' });
if (child.error) {
  process.stderr.write(`nopesight-auth: ${child.error.message}\n`);
  process.exit(1);
}
process.exit(child.status ?? 1);
