// Two server processes of one instance on one PostgreSQL database (test/helpers/scale-out.ts): how
// long a verdict issued through the first takes to be matched by the second (the change feed's
// NOTIFY, its read and the matcher update), measured from the answer to the first lookup at
// the second that finds it, looked up back to back.
import { randomBytes } from 'node:crypto';
import { admin, verdictBody } from '../test/helpers/fault-mesh.js';
import { lookupSha256, startScaleOut } from '../test/helpers/scale-out.js';
import { HAVE_POSTGRES } from '../test/helpers/services.js';
import { percentile, round, type BenchResult } from './result.js';

const SAMPLES = 200;

export async function benchProcesses(): Promise<BenchResult[]> {
  if (!HAVE_POSTGRES) throw new Error('the processes bench needs PostgreSQL (VOUCH_TEST_DATABASE_URL)');
  const scale = await startScaleOut(['127.0.0.5', '127.0.0.6']);
  try {
    const delays: number[] = [];
    for (let n = 0; n < SAMPLES; n++) {
      const sha256 = randomBytes(32).toString('hex');
      const res = await admin(scale.one, 'POST', '/verdicts', verdictBody(sha256));
      if (res.status !== 201) throw new Error(`issue answered ${res.status}: ${await res.text()}`);
      const { id } = (await res.json()) as { id: string };
      const issued = performance.now();
      const deadline = issued + 10_000;
      while (!(await lookupSha256(scale.two, sha256)).some((m) => m.id === id)) {
        if (performance.now() > deadline) throw new Error(`verdict ${n} not matched at the second process within 10 s`);
      }
      delays.push(performance.now() - issued);
    }
    delays.sort((a, b) => a - b);
    return [
      { name: 'process_propagation_ms_p50', value: round(percentile(delays, 0.5), 2), unit: 'ms' },
      { name: 'process_propagation_ms_p95', value: round(percentile(delays, 0.95), 2), unit: 'ms' },
      { name: 'process_propagation_ms_max', value: round(delays[delays.length - 1], 2), unit: 'ms' },
    ];
  } finally {
    await scale.cleanup();
  }
}
