// Runs the match-index benchmarks and prints `name value unit` lines.
// Usage: node dist/bench/pdq-index-main.js [size ...]   (default sizes: 100000 1000000 10000000)
import { benchPdqIndex, benchSha256Index } from './pdq-index.js';

const sizes = process.argv.slice(2).map(Number).filter((n) => Number.isInteger(n) && n > 0);
for (const line of await benchPdqIndex(sizes.length > 0 ? sizes : undefined)) {
  console.log(`${line.name} ${line.value} ${line.unit}`);
}
for (const line of await benchSha256Index()) console.log(`${line.name} ${line.value} ${line.unit}`);
