#!/usr/bin/env node
// Compiles the TypeScript sources to dist/ and records what it compiled, so that `npm start` runs
// tsc only when the sources changed since (a cold tsc costs about 40 s on 2 cores; this check, a
// few milliseconds).
//
//   node scripts/build.mjs               compile, then write the stamp
//   node scripts/build.mjs --if-stale    compile only when the sources differ from the stamp
//   node scripts/build.mjs --if-stale --optional
//                                        the same, but without TypeScript (a production install,
//                                        `npm install --omit=dev`) say nothing and succeed: npm runs
//                                        this as `prepare`, and dist/ then comes from a full install
//
// The stamp (dist/.build-stamp) is a SHA-256 of tsconfig.json and every file tsc compiles: contents,
// not modification times, so a `git pull` that changes nothing, a copy or a clock does not matter.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const STAMP = join(ROOT, 'dist', '.build-stamp');
// The folders tsconfig.json's `include` names; a new one there must be added here.
const SOURCE_DIRS = ['server', 'shared', 'bench', 'test/helpers'];

const args = new Set(process.argv.slice(2));
const unknown = [...args].filter((a) => a !== '--if-stale' && a !== '--optional');
if (unknown.length > 0) {
  console.error(`unknown option(s) ${unknown.join(' ')}; usage: node scripts/build.mjs [--if-stale [--optional]]`);
  process.exit(2);
}

function* sourceFiles(dir) {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) yield* sourceFiles(path);
    else if (entry.name.endsWith('.ts')) yield path;
  }
}

function sourceDigest() {
  const files = [join(ROOT, 'tsconfig.json'), ...SOURCE_DIRS.flatMap((d) => [...sourceFiles(join(ROOT, d))])]
    .map((f) => relative(ROOT, f).split('\\').join('/'))
    .sort();
  const hash = createHash('sha256');
  for (const file of files) {
    const content = readFileSync(join(ROOT, file));
    hash.update(`${file}\0${content.length}\0`).update(content);
  }
  return hash.digest('hex');
}

if (!existsSync(join(ROOT, 'tsconfig.json'))) {
  // A checkout without sources (a container's runtime stage installs its dependencies before
  // dist/ is copied in): nothing to build here.
  if (args.has('--optional')) process.exit(0);
  console.error('tsconfig.json is missing: this folder is not a Vouch checkout');
  process.exit(1);
}
const digest = sourceDigest();
if (args.has('--if-stale') && existsSync(STAMP) && readFileSync(STAMP, 'utf8').trim() === digest) process.exit(0);

let tsc;
try {
  tsc = createRequire(join(ROOT, 'package.json')).resolve('typescript/bin/tsc');
} catch {
  if (args.has('--optional')) process.exit(0);
  console.error(
    existsSync(STAMP)
      ? 'dist/ was built from other sources than these, and TypeScript is not installed (a production install?): ' +
          'run `npm install` (which builds), or build where the dev dependencies are and copy dist/ here'
      : 'dist/ is not built and TypeScript is not installed (a production install?): run `npm install` first, ' +
          'or build where the dev dependencies are and copy dist/ here',
  );
  process.exit(1);
}

console.error(existsSync(STAMP) ? 'sources changed since the last build: compiling (tsc)…' : 'compiling the server (tsc, about a minute on 2 cores)…');
const result = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.json')], { cwd: ROOT, stdio: 'inherit' });
if (result.status !== 0) process.exit(result.status ?? 1);
writeFileSync(STAMP, `${digest}\n`);
