#!/usr/bin/env node
// Deletes the ONNX Runtime libraries built for other operating systems and processors from
// node_modules/onnxruntime-node: its npm package carries all six (about 290 MB), a machine runs one
// (linux/x64: 45 MB). For production installs and container images; `npm install` puts them back.
//
//   node scripts/prune-platform-binaries.mjs
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const BIN = join(dirname(fileURLToPath(import.meta.url)), '..', 'node_modules', 'onnxruntime-node', 'bin', 'napi-v6');
if (!existsSync(join(BIN, process.platform, process.arch))) {
  console.error(`no ONNX Runtime library for ${process.platform}/${process.arch} under ${BIN}: nothing pruned (run \`npm install\` first)`);
  process.exit(1);
}
for (const os of readdirSync(BIN)) {
  for (const arch of readdirSync(join(BIN, os))) {
    if (os !== process.platform || arch !== process.arch) rmSync(join(BIN, os, arch), { recursive: true, force: true });
  }
  if (readdirSync(join(BIN, os)).length === 0) rmSync(join(BIN, os), { recursive: true });
}
