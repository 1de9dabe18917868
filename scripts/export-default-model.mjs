#!/usr/bin/env node
// Writes a bundled classifier's model (`default`, MobileNetV2, unless MODEL says `inception`) as a
// standalone ONNX file plus the ONNX-backend config that describes it, for inspection (e.g. in Netron), for running it on another runtime, or for running
// it through the ONNX backend with another mapping or on a GPU (`executionProvider: "cuda"`). Vouch
// itself does not need this: the bundled classifiers convert nsfwjs's weights in memory at start
// (server/scanning/classifiers/default-model.ts).
//
//   npm run build && node scripts/export-default-model.mjs OUT_DIR [MODEL]
//
// Needs only node_modules (nsfwjs ships the weights); no network.
import { mkdir, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';

const [outDir, model = 'default'] = process.argv.slice(2);
const usage = 'usage: node scripts/export-default-model.mjs OUT_DIR [default|inception]   (run `npm run build` first)';
if (!outDir) {
  console.error(usage);
  process.exit(2);
}
let mod;
try {
  mod = await import('../dist/server/scanning/classifiers/default-model.js');
} catch (err) {
  console.error(`cannot load dist/ (run \`npm run build\` first): ${err.message}`);
  process.exit(1);
}
if (!mod.isBundledModel(model)) {
  console.error(`unknown model "${model}"\n${usage}`);
  process.exit(2);
}
const converted = mod.convertDefaultModel(mod.locateNsfwjsModel(model));
const base = `${mod.BUNDLED_MODELS[model].name}-${converted.nsfwjsVersion}`;
await mkdir(resolve(outDir), { recursive: true });
const modelPath = join(resolve(outDir), `${base}.onnx`);
const configPath = join(resolve(outDir), `${base}.json`);
await writeFile(modelPath, converted.onnx);
await writeFile(configPath, `${JSON.stringify({ ...mod.defaultModelConfig(converted, converted.nsfwjsVersion, model), model: `${base}.onnx` }, null, 2)}\n`);
console.log(`${modelPath} (${(converted.onnx.length / 1e6).toFixed(1)} MB)\n${configPath}`);
