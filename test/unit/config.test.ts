import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, ENVIRONMENT_VARIABLES, booleanVariable, loadConfig, videoHashOptions, videoScanOptions } from '../../server/config/index.js';
import { DEFAULT_SAMPLED_FRAMES, MAX_SAMPLED_FRAMES } from '../../server/video/frames.js';
import { DEFAULT_FRAMES_PER_SECOND, DEFAULT_VIDEO_LIMITS, checkVideoSettings } from '../../server/video/index.js';
import { PROJECT_ROOT } from '../../server/config/paths.js';
import { tempDir } from '../helpers/services.js';

describe('config', () => {
  it('documents every environment variable in the operator guide\'s one table', () => {
    const guide = readFileSync(join(PROJECT_ROOT, 'docs/operator-guide.md'), 'utf8');
    const table = guide.slice(guide.indexOf('## Configuration'), guide.indexOf('\n## ', guide.indexOf('## Configuration') + 5));
    const rows = table.split('\n').filter((line) => line.startsWith('| `'));
    expect(ENVIRONMENT_VARIABLES.filter((name) => !rows.some((row) => row.split('|')[1].includes(`\`${name}\``)))).toEqual([]);
  });

  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config.dataDir).toBe('./data');
    expect(config.port).toBe(8080);
    expect(config.publicUrl).toBe('http://127.0.0.1:8080');
    expect(config.limits.maxPixels).toBe(100_000_000);
    expect(config.databaseUrl).toBeUndefined();
  });

  it('takes the queue lease from VOUCH_QUEUE_LEASE_MS, 30 s by default, and refuses one under a second', () => {
    expect(loadConfig({}).queueLeaseMs).toBe(30_000);
    expect(loadConfig({ VOUCH_QUEUE_LEASE_MS: '5000' }).queueLeaseMs).toBe(5_000);
    expect(() => loadConfig({ VOUCH_QUEUE_LEASE_MS: '50' })).toThrow(/VOUCH_QUEUE_LEASE_MS/);
  });

  it('reads the environment over the file, and flags over both', () => {
    const dir = tempDir();
    const file = join(dir, 'vouch.json');
    writeFileSync(file, JSON.stringify({ port: 9000, host: '0.0.0.0', limits: { maxFrames: 10 } }));
    const config = loadConfig({ VOUCH_CONFIG: file, VOUCH_PORT: '9100', VOUCH_MAX_PIXELS: '1000' }, { dataDir: '/srv/vouch' });
    expect(config.port).toBe(9100);
    expect(config.host).toBe('0.0.0.0');
    expect(config.limits).toMatchObject({ maxFrames: 10, maxPixels: 1000 });
    expect(config.dataDir).toBe('/srv/vouch');
  });

  it('names every bad field, and never echoes a secret', () => {
    const secret = 'short-secret';
    let error: unknown;
    try {
      loadConfig({ VOUCH_PORT: '70000', DATABASE_URL: 'mysql://x', VOUCH_ADMIN_TOKEN: secret });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    expect(message).toMatch(/port/);
    expect(message).toMatch(/databaseUrl: must be a postgres/);
    expect(message).toMatch(/adminToken: must be at least 32 characters/);
    expect(message).not.toContain(secret);
  });

  it('rejects unknown keys in the file and files that are not JSON objects', () => {
    const dir = tempDir();
    const typo = join(dir, 'typo.json');
    writeFileSync(typo, JSON.stringify({ prot: 80 }));
    expect(() => loadConfig({ VOUCH_CONFIG: typo })).toThrow(/Unrecognized key.*prot/);
    const notJson = join(dir, 'bad.json');
    writeFileSync(notJson, '{ port: ');
    expect(() => loadConfig({ VOUCH_CONFIG: notJson })).toThrow(/not valid JSON/);
    expect(() => loadConfig({ VOUCH_CONFIG: join(dir, 'missing.json') })).toThrow(/cannot read config file/);
  });

  it('reads every boolean setting as true/false, 1/0 or yes/no in any case', () => {
    const booleans = { VOUCH_AUTO_APPROVE_FOLLOWERS: 'autoApproveFollowers', VOUCH_PUBLIC_OK_FEED: 'publicOkFeed', VOUCH_FEDERATION_ALLOW_HTTP: 'allowHttp' } as const;
    for (const [variable, key] of Object.entries(booleans)) {
      for (const [text, value] of [['true', true], ['1', true], ['yes', true], ['TRUE', true], [' Yes ', true], ['false', false], ['0', false], ['no', false], ['No', false]] as const) {
        expect(loadConfig({ [variable]: text }).federation[key], `${variable}=${text}`).toBe(value);
      }
      expect(loadConfig({}).federation[key]).toBe(false);
    }
    const dir = tempDir();
    const file = join(dir, 'vouch.json');
    writeFileSync(file, JSON.stringify({ federation: { allowHttp: true, publicOkFeed: 'yes' } }));
    expect(loadConfig({ VOUCH_CONFIG: file }).federation).toMatchObject({ allowHttp: true, publicOkFeed: true });
  });

  it('refuses any other boolean value, naming the variable and the accepted forms', () => {
    for (const text of ['on', 'y', '2', 'truee']) {
      expect(() => loadConfig({ VOUCH_FEDERATION_ALLOW_HTTP: text })).toThrow(
        /federation\.allowHttp: must be true\/false, 1\/0 or yes\/no \(set by VOUCH_FEDERATION_ALLOW_HTTP\)/,
      );
    }
    const dir = tempDir();
    const file = join(dir, 'vouch.json');
    writeFileSync(file, JSON.stringify({ federation: { publicOkFeed: 1 } }));
    // From the file: the key is named, and no variable is blamed.
    expect(() => loadConfig({ VOUCH_CONFIG: file })).toThrow(/federation\.publicOkFeed: must be true\/false, 1\/0 or yes\/no$/);
  });

  it("gives video hashing server/video's defaults, and refuses settings a vPDQ frame list cannot carry", () => {
    // The defaults are written twice (here for the operator, in server/video for callers): kept equal.
    expect(videoHashOptions(loadConfig({}))).toEqual({
      limits: { ...DEFAULT_VIDEO_LIMITS },
      framesPerSecond: DEFAULT_FRAMES_PER_SECOND,
      tools: { ffmpeg: undefined, ffprobe: undefined },
    });
    const custom = videoHashOptions(
      loadConfig({ VOUCH_FFMPEG: '/opt/ffmpeg/bin/ffmpeg', VOUCH_VIDEO_FPS: '0.5', VOUCH_VIDEO_MAX_SECONDS: '1800', VOUCH_VIDEO_MEMORY_MB: '256', VOUCH_MAX_PIXELS: '8294400' }),
    );
    expect(custom.tools.ffmpeg).toBe('/opt/ffmpeg/bin/ffmpeg');
    expect(custom.framesPerSecond).toBe(0.5);
    expect(custom.limits).toMatchObject({ maxDurationSeconds: 1800, memoryBytes: 256 * 2 ** 20, maxPixels: 8_294_400 });
    expect(() => checkVideoSettings(custom.limits, custom.framesPerSecond)).not.toThrow();
    expect(() => loadConfig({ VOUCH_VIDEO_FPS: '0' })).toThrow(/video\.framesPerSecond: .*\(set by VOUCH_VIDEO_FPS\)/);
    expect(() => loadConfig({ VOUCH_VIDEO_FPS: 'fast' })).toThrow(/video\.framesPerSecond/);
    expect(() => loadConfig({ VOUCH_VIDEO_FPS: '2', VOUCH_VIDEO_MAX_SECONDS: '3600' })).toThrow(/video: maxDurationSeconds x framesPerSecond must stay under 1800 frames/);
  });

  it("gives the scanner video hashing's limits and ffmpeg, and a frame cap within what sampling holds", () => {
    const defaults = videoScanOptions(loadConfig({}));
    expect(defaults).toEqual({ maxFrames: DEFAULT_SAMPLED_FRAMES, limits: videoHashOptions(loadConfig({})).limits, tools: { ffmpeg: undefined, ffprobe: undefined } });
    const custom = videoScanOptions(loadConfig({ VOUCH_VIDEO_SCAN_FRAMES: '4', VOUCH_FFMPEG: '/opt/ffmpeg', VOUCH_VIDEO_MAX_SECONDS: '60' }));
    expect(custom).toMatchObject({ maxFrames: 4, tools: { ffmpeg: '/opt/ffmpeg' }, limits: { maxDurationSeconds: 60 } });
    expect(videoScanOptions(loadConfig({ VOUCH_VIDEO_SCAN_FRAMES: String(MAX_SAMPLED_FRAMES) })).maxFrames).toBe(MAX_SAMPLED_FRAMES);
    for (const bad of ['0', String(MAX_SAMPLED_FRAMES + 1), '2.5', 'many']) {
      expect(() => loadConfig({ VOUCH_VIDEO_SCAN_FRAMES: bad }), bad).toThrow(/video\.scanFrames: .*\(set by VOUCH_VIDEO_SCAN_FRAMES\)/);
    }
  });

  it('reads switches outside the configuration (VOUCH_REQUIRE_SERVICES) the same way', () => {
    expect(booleanVariable({}, 'VOUCH_REQUIRE_SERVICES')).toBe(false);
    expect(booleanVariable({ VOUCH_REQUIRE_SERVICES: '' }, 'VOUCH_REQUIRE_SERVICES')).toBe(false);
    for (const text of ['1', 'true', 'YES']) expect(booleanVariable({ VOUCH_REQUIRE_SERVICES: text }, 'VOUCH_REQUIRE_SERVICES')).toBe(true);
    for (const text of ['0', 'False', 'no']) expect(booleanVariable({ VOUCH_REQUIRE_SERVICES: text }, 'VOUCH_REQUIRE_SERVICES')).toBe(false);
    expect(() => booleanVariable({ VOUCH_REQUIRE_SERVICES: 'on' }, 'VOUCH_REQUIRE_SERVICES')).toThrow(
      new ConfigError('VOUCH_REQUIRE_SERVICES: must be true/false, 1/0 or yes/no'),
    );
  });
});
