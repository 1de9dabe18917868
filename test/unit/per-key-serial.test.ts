import { describe, expect, it } from 'vitest';
import { PerKeySerial } from '../../server/per-key-serial.js';

const tick = () => new Promise((r) => setTimeout(r, 5));

describe('PerKeySerial', () => {
  it('runs one task per key at a time, in order, and different keys side by side', async () => {
    const serial = new PerKeySerial<string>();
    const log: string[] = [];
    const task = (name: string) => async () => {
      log.push(`start ${name}`);
      await tick();
      log.push(`end ${name}`);
      return name;
    };
    const results = await Promise.all([serial.run('a', task('a1')), serial.run('a', task('a2')), serial.run('b', task('b1'))]);
    expect(results).toEqual(['a1', 'a2', 'b1']);
    expect(log.indexOf('end a1')).toBeLessThan(log.indexOf('start a2'));
    expect(log.indexOf('start b1')).toBeLessThan(log.indexOf('end a1'));
  });

  it('a failing task rejects its own caller only; the next one for the key still runs', async () => {
    const serial = new PerKeySerial<number>();
    const failed = serial.run(1, async () => {
      throw new Error('boom');
    });
    const next = serial.run(1, async () => 'ran');
    await expect(failed).rejects.toThrow('boom');
    await expect(next).resolves.toBe('ran');
  });

  it('forgets a key once its queue is empty', async () => {
    const serial = new PerKeySerial<string>();
    await serial.run('k', async () => undefined);
    await tick();
    expect((serial as unknown as { tails: Map<string, unknown> }).tails.size).toBe(0);
  });
});
