// `npm run bench [-- SUITE...]`: runs the benchmark suites and prints one `name value unit` line
// per figure. Suites: hashing, index, log, scanner, trust, federation, federation-sim, pdq-radius, start, processes, video, video-lookup (all when none is named). Record the figures,
// with the machine they ran on, in docs/benchmarks.md.
import { availableParallelism, cpus, totalmem } from 'node:os';
import type { BenchResult } from './result.js';

const SUITES: Record<string, () => Promise<BenchResult[]>> = {
  hashing: async () => [
    ...(await (await import('./hashing.js')).benchHashing()),
    ...(await (await import('./hash-throughput.js')).benchHashThroughput()),
    ...(await (await import('./hash-cli.js')).benchHashCli()),
    ...(await (await import('./pdq-reference.js')).benchPdqReference()),
  ],
  index: async () => {
    const { benchPdqIndex, benchSha256Index } = await import('./pdq-index.js');
    return [...(await benchPdqIndex()), ...(await benchSha256Index())];
  },
  federation: async () => (await import('./federation.js')).benchFederation(),
  log: async () => (await import('./log.js')).benchLog(),
  scanner: async () => (await import('./scanner.js')).benchScanner(),
  trust: async () => (await import('./trust.js')).benchTrust(),
  'federation-sim': async () => (await import('./federation-sim.js')).benchFederationSim(),
  start: async () => (await import('./start.js')).benchStart(),
  'pdq-radius': async () => (await import('./pdq-radius.js')).benchPdqRadius(),
  processes: async () => (await import('./processes.js')).benchProcesses(),
  video: async () => (await import('./video.js')).benchVideo(),
  'video-lookup': async () => (await import('./video-lookup.js')).benchVideoLookup(),
};

const requested = process.argv.slice(2);
const unknown = requested.filter((name) => !(name in SUITES));
if (unknown.length > 0) {
  console.error(`unknown suite(s): ${unknown.join(', ')}; choose from ${Object.keys(SUITES).join(', ')}`);
  process.exit(2);
}
console.error(`# ${cpus()[0]?.model ?? 'unknown cpu'}, ${availableParallelism()} cores, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`);
for (const name of requested.length > 0 ? requested : Object.keys(SUITES)) {
  for (const { name: figure, value, unit } of await SUITES[name]()) console.log(`${figure} ${value} ${unit}`);
}
