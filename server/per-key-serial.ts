// Runs tasks one after another per key, while tasks for different keys run concurrently; a key is
// forgotten once nothing for it is left to run.
export class PerKeySerial<K> {
  /** Per key, a promise that settles (never rejects) when the last task queued for it has. */
  private readonly tails = new Map<K, Promise<void>>();

  /** Runs `task` once every task queued earlier for `key` has settled; settles as `task` does. */
  run<T>(key: K, task: () => Promise<T>): Promise<T> {
    const result = (this.tails.get(key) ?? Promise.resolve()).then(task);
    const tail = result.then(
      () => undefined,
      () => undefined,
    );
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return result;
  }
}
