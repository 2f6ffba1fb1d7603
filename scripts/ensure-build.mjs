#!/usr/bin/env node
// Runs before `npm start`, `start:app` and `start:worker`: builds dist/ (`npm run build`) when
// it is missing or was built from other sources than the ones here, so one command starts
// Berth after a clone or a `git pull`. The check is a hash of what the build reads (code,
// Prisma schema, TypeScript settings, lock file), written by the build to dist/.build-hash.
//
//   node scripts/ensure-build.mjs           build if needed
//   node scripts/ensure-build.mjs --write   (the build's last step) record the hash
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { createRequire } from 'node:module';

const root = join(dirname(new URL(import.meta.url).pathname), '..');
const STAMP = join(root, 'dist', '.build-hash');
const INPUTS = ['app', 'worker', 'lib', 'prisma/schema.prisma', 'tsconfig.json', 'tsconfig.build.json', 'package-lock.json'];

function files(path) {
  const abs = join(root, path);
  if (!existsSync(abs)) return [];
  if (!statSync(abs).isDirectory()) return [abs];
  const out = [];
  const walk = (dir) => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.isFile() && /\.(ts|mts|json)$/.test(e.name)) out.push(p);
    }
  };
  walk(abs);
  return out;
}

function sourceHash() {
  const h = createHash('sha256');
  for (const f of INPUTS.flatMap(files).sort()) {
    h.update(relative(root, f)).update('\0').update(readFileSync(f)).update('\0');
  }
  return h.digest('hex');
}

if (process.argv.includes('--write')) {
  writeFileSync(STAMP, sourceHash() + '\n');
  process.exit(0);
}

const built = existsSync(STAMP) ? readFileSync(STAMP, 'utf8').trim() : null;
if (built && built === sourceHash()) process.exit(0);

const why = built ? 'the sources changed since dist/ was built' : 'dist/ is not built yet';
let haveTools = true;
try {
  const require = createRequire(join(root, 'package.json'));
  require.resolve('typescript/package.json');
  require.resolve('prisma/package.json');
} catch {
  haveTools = false;
}
if (!haveTools) {
  if (built && existsSync(join(root, 'dist/app/main.js'))) {
    console.error(`[berth] ${why}, and the build tools are not installed (npm ci --omit=dev?): starting the dist/ that is there. Run \`npm ci && npm run build\` to build it again.`);
    process.exit(0);
  }
  console.error(`[berth] ${why}, and the build tools (typescript, prisma) are not installed (npm ci --omit=dev?). Run \`npm ci && npm run build\` once, then start again.`);
  process.exit(1);
}
console.error(`[berth] ${why}: building (npm run build)…`);
const run = spawnSync('npm', ['run', '-s', 'build'], { cwd: root, stdio: 'inherit' });
if (run.status !== 0) {
  console.error('[berth] the build failed (see above); Berth did not start.');
  process.exit(run.status ?? 1);
}
