#!/usr/bin/env node
// Writes the default classifier's model as a standalone ONNX file plus the ONNX-backend config that
// describes it, for inspection (e.g. in Netron), for running it on another runtime, or for running
// it through the ONNX backend with another mapping. Vouch itself does not need this: the default
// classifier converts nsfwjs's weights in memory at start (server/scanning/classifiers/default-model.ts).
//
//   npm run build && node scripts/export-default-model.mjs OUT_DIR
//
// Needs only node_modules (nsfwjs ships the weights); no network.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const outDir = process.argv[2];
if (!outDir) {
  console.error('usage: node scripts/export-default-model.mjs OUT_DIR   (run `npm run build` first)');
  process.exit(2);
}
let mod;
try {
  mod = await import('../dist/server/scanning/classifiers/default-model.js');
} catch (err) {
  console.error(`cannot load dist/ (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}
const converted = mod.convertDefaultModel();
const base = `nsfwjs-mobilenet-v2-${converted.nsfwjsVersion}`;
await mkdir(resolve(outDir), { recursive: true });
const modelPath = join(resolve(outDir), `${base}.onnx`);
const configPath = join(resolve(outDir), `${base}.json`);
await writeFile(modelPath, converted.onnx);
await writeFile(configPath, `${JSON.stringify({ ...mod.defaultModelConfig(converted, converted.nsfwjsVersion), model: `${base}.onnx` }, null, 2)}\n`);
console.log(`${modelPath} (${(converted.onnx.length / 1e6).toFixed(1)} MB)\n${configPath}`);
