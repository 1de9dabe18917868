// Two `vouch serve` processes of one instance on one PostgreSQL schema (the documented scale-out):
// the same public URL, database and admin token, each listening on its own loopback address. Jobs
// go to the database's queue (no Redis), so PostgreSQL is the only shared dependency.
import { freePort, startServerProcess } from './process.js';
import { ADMIN_TOKEN, instance, type Instance } from './fault-mesh.js';

export interface ScaleOut {
  /** The first process; its `db` is a client on the shared schema. */
  one: Instance;
  /** The second process of the same instance. */
  two: Instance;
  cleanup(): Promise<void>;
}

/** Starts the first process, then the second once the first has created the instance's keys. */
export async function startScaleOut(hosts: [string, string]): Promise<ScaleOut> {
  const one = await instance(hosts[0], { REDIS_URL: '' });
  try {
    one.server = await startServerProcess(one.env);
    const port = await freePort(hosts[1]);
    const two: Instance = { ...one, url: `http://${hosts[1]}:${port}`, env: { ...one.env, VOUCH_HOST: hosts[1], VOUCH_PORT: String(port) }, server: undefined };
    two.server = await startServerProcess(two.env);
    return {
      one,
      two,
      async cleanup() {
        await two.server?.stop();
        await one.server?.stop();
        await one.cleanup();
      },
    };
  } catch (err) {
    await one.server?.stop();
    await one.cleanup();
    throw err;
  }
}

/** What `process` matches for a SHA-256, asked with the admin token (restricted labels included). */
export async function lookupSha256(process: Instance, sha256: string): Promise<Array<{ id: string; label: string }>> {
  const res = await fetch(`${process.url}/api/v1/verdicts?sha256=${sha256}`, { headers: { authorization: `Bearer ${ADMIN_TOKEN}` } });
  if (res.status !== 200) throw new Error(`lookup answered ${res.status}: ${await res.text()}`);
  return ((await res.json()) as { matches: Array<{ id: string; label: string }> }).matches;
}
