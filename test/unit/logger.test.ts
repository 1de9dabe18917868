// Logs are JSON lines for services and collectors, readable lines on a terminal; secrets are
// redacted either way.
import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../server/config/logger.js';

function capture(isTTY: boolean) {
  const stream = Object.assign(new PassThrough(), { isTTY });
  let text = '';
  stream.on('data', (d: Buffer) => (text += d.toString()));
  return { stream, text: () => text };
}

describe('createLogger', () => {
  it('writes one JSON object per line when the destination is not a terminal', async () => {
    const out = capture(false);
    createLogger({ logLevel: 'info' }, out.stream).info({ url: 'http://127.0.0.1:8080', adminToken: 'hunter2' }, 'vouch listening');
    await new Promise((resolve) => setImmediate(resolve));
    const record = JSON.parse(out.text().trim()) as Record<string, unknown>;
    expect(record).toMatchObject({ level: 30, service: 'vouch', msg: 'vouch listening', adminToken: '[redacted]' });
  });

  it('writes readable lines, not JSON, to a terminal', async () => {
    const out = capture(true);
    createLogger({ logLevel: 'info' }, out.stream).warn({ config: { adminToken: 'hunter2' } }, 'vouch listening');
    await new Promise((resolve) => setImmediate(resolve));
    const text = out.text();
    expect(text).toMatch(/^\[\d\d:\d\d:\d\d\.\d{3}\] .*WARN.*: .*vouch listening/);
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).toContain('[redacted]');
    expect(text).not.toContain('hunter2');
    expect(() => JSON.parse(text)).toThrow();
  });
});
