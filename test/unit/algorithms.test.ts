// The hash-algorithm registry: each algorithm's digest format round-trips and refuses hostile
// text, and an algorithm registered only in a test registry flows through the vocabulary, the
// matcher and the decision tiers with nothing else changed.
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ALGORITHM_REGISTRY, AlgorithmRegistry, DigestFormatError, type HashAlgorithm } from '../../shared/algorithms/index.js';
import { fileDigestAlgorithm } from '../../shared/algorithms/hex-digest.js';
import { pdq } from '../../shared/algorithms/pdq.js';
import { parseVerdict, VocabError } from '../../shared/vocab/objects.js';
import { Matcher, queryOf } from '../../server/matching/matcher.js';
import { DEFAULT_POLICY, decide, type MatchedVerdict } from '../../server/trust/decide.js';

const NOW = new Date('2026-11-01T12:00:00Z');

describe('registered algorithms', () => {
  it('lists SHA-256, PDQ, pHash-64, MD5 and vPDQ, each once', () => {
    expect([...ALGORITHM_REGISTRY.names].sort()).toEqual(['md5', 'pdq', 'phash64', 'sha256', 'vpdq']);
  });

  for (const algorithm of ALGORITHM_REGISTRY.all) {
    describe(algorithm.name, () => {
      const hex = randomBytes(algorithm.digestBytes).toString('hex');

      it('round-trips its wire text', () => {
        const bytes = algorithm.parse(hex);
        expect(bytes).toHaveLength(algorithm.digestBytes);
        expect(algorithm.format(bytes)).toBe(hex);
        expect(algorithm.distance(bytes, algorithm.parse(hex))).toBe(0);
      });

      it.each([
        ['too short', hex.slice(2)],
        ['too long', `${hex}00`],
        ['upper case', hex.toUpperCase().replace(/^[0-9]*/, 'A')],
        ['not hex', `g${hex.slice(1)}`],
        ['empty', ''],
        ['whitespace', ` ${hex.slice(1)}`],
        ['a number', 12],
        ['an array', [hex]],
        ['null', null],
        ['huge', 'a'.repeat(1_000_000)],
      ])('refuses %s', (_what, text) => {
        expect(() => algorithm.parse(text)).toThrow(DigestFormatError);
      });

      it('is refused by the vocabulary at another length and accepted at its own', () => {
        const verdict = (digest: string) => ({
          '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/vouch/v1'],
          type: 'Verdict',
          id: 'https://a.example/verdicts/1',
          attributedTo: 'https://a.example/actor',
          subject: [{ algorithm: algorithm.name, digest }],
          label: 'spam',
          confidence: 1,
          method: 'human',
          published: '2026-11-01T11:00:00Z',
        });
        if (algorithm.frameList) {
          // On the wire a frame-list algorithm's subject is its frames, never a digest (protocol-doc.test.ts tests the frames).
          expect(() => parseVerdict(verdict(hex), { now: NOW, requireProof: false })).toThrow(/digest.*not defined/s);
          return;
        }
        expect(parseVerdict(verdict(hex), { now: NOW, requireProof: false }).subject[0]).toEqual({ algorithm: algorithm.name, digest: hex });
        expect(() => parseVerdict(verdict(`${hex}00`), { now: NOW, requireProof: false })).toThrow(VocabError);
      });
    });
  }

  it('a registry refuses a duplicate name, a bad name, an oversized digest and an unknown second hash', () => {
    const sha1 = fileDigestAlgorithm('sha1', 'SHA-1', 20);
    expect(() => new AlgorithmRegistry([sha1, sha1])).toThrow(/twice/);
    expect(() => new AlgorithmRegistry([fileDigestAlgorithm('SHA 1', 'x', 20)])).toThrow(/name/);
    expect(() => new AlgorithmRegistry([fileDigestAlgorithm('sha512', 'x', 64)])).toThrow(/1 to 32 bytes/);
    expect(() => new AlgorithmRegistry([pdq])).toThrow(/unknown 'phash64'/);
  });
});

describe('an algorithm registered in a test registry', () => {
  // A 20-byte file digest and a second PDQ-space algorithm (say, a PDQ of video frames), neither
  // known to this build.
  const sha1: HashAlgorithm = fileDigestAlgorithm('sha1', 'SHA-1 of the bytes (test)', 20);
  const framePdq: HashAlgorithm = { ...pdq, name: 'framepdq', confirmedBy: undefined, description: 'PDQ of video frames (test)' };
  const registry = new AlgorithmRegistry([...ALGORITHM_REGISTRY.all, sha1, framePdq]);

  it('is accepted by the vocabulary only with that registry', () => {
    const digest = randomBytes(20).toString('hex');
    const v = {
      '@context': ['https://www.w3.org/ns/activitystreams', 'https://w3id.org/vouch/v1'],
      type: 'Verdict',
      id: 'https://a.example/verdicts/2',
      attributedTo: 'https://a.example/actor',
      subject: [{ algorithm: 'sha1', digest }],
      label: 'csam',
      confidence: 1,
      method: 'hashlist',
      published: '2026-11-01T11:00:00Z',
    };
    expect(() => parseVerdict(v, { now: NOW, requireProof: false })).toThrow(/subject\[0\]\.algorithm/);
    expect(parseVerdict(v, { now: NOW, requireProof: false, registry }).subject).toEqual([{ algorithm: 'sha1', digest }]);
  });

  it('is indexed and matched by the matcher, and its matches are placed by its own tiers', () => {
    const matcher = new Matcher(registry);
    const sha1Digest = randomBytes(20);
    const frame = randomBytes(32);
    matcher.add(1, [{ algorithm: 'sha1', digest: sha1Digest, quality: null }]);
    matcher.add(2, [{ algorithm: 'framepdq', digest: frame, quality: 90 }]);
    matcher.add(3, [{ algorithm: 'framepdq', digest: randomBytes(32), quality: 10 }]); // too flat: not indexed
    expect(matcher.size).toMatchObject({ sha1: 1, framepdq: 1 });

    const near = Buffer.from(frame);
    near[0] ^= 0b111; // 3 bits away
    const hits = matcher.match(queryOf([{ algorithm: 'sha1', digest: sha1Digest.toString('hex') }, { algorithm: 'pdq', digest: near.toString('hex'), quality: 100 }], { registry }));
    expect(hits).toEqual([
      { verdictId: 1, algorithm: 'sha1', distance: 0 },
      { verdictId: 2, algorithm: 'framepdq', distance: 3 },
    ]);

    const verdict = (matchedBy: string, distance: number, label: 'ok' | 'csam'): MatchedVerdict => ({
      uri: `https://a.example/v/${matchedBy}`,
      issuer: 'https://a.example/actor',
      local: true,
      label,
      confidence: 1,
      method: 'human',
      distance,
      matchedBy,
      published: '2026-11-01T11:00:00Z',
    });
    const weight = () => ({ weight: 1, paths: [] });
    // A human `ok` allows only on a match that identifies the file: SHA-1's, not a frame's.
    expect(decide([verdict('sha1', 0, 'ok')], weight, DEFAULT_POLICY, { registry }).outcome).toBe('allow');
    expect(decide([verdict('framepdq', 3, 'ok')], weight, DEFAULT_POLICY, { registry }).outcome).not.toBe('allow');
    expect(decide([verdict('framepdq', 3, 'csam')], weight, DEFAULT_POLICY, { registry }).outcome).toBe('block');

    matcher.remove(2, [{ algorithm: 'framepdq', digest: frame, quality: 90 }]);
    expect(matcher.match(queryOf([{ algorithm: 'pdq', digest: near.toString('hex') }], { registry }))).toEqual([]);
  });
});
