import { describe, expect, it } from 'vitest';
import { HashListError, parseHashList } from '../../server/verdicts/hash-list.js';

const PDQ = 'd8f8f0cee0f4a84f0637022a078f67f0b36e2ed596621e1d33e6339c4e9c9b22';
const SHA = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';

describe('hash lists', () => {
  it('reads prefixed, bare, labelled and commented lines', () => {
    const text = `hash,label,confidence\n# partner list\npdq:${PDQ},csam,0.9\nsha256:${SHA.toUpperCase()}\t spam\n\n${SHA}\n`;
    const entries = parseHashList(text, { algorithm: 'sha256', label: 'gore' });
    expect(entries).toEqual([
      { line: 3, algorithm: 'pdq', digest: PDQ, label: 'csam', confidence: 0.9 },
      { line: 4, algorithm: 'sha256', digest: SHA, label: 'spam', confidence: 1 },
      { line: 6, algorithm: 'sha256', digest: SHA, label: 'gore', confidence: 1 },
    ]);
  });

  it('rejects the whole list, naming each bad line', () => {
    const text = `pdq:${PDQ},csam\npdq:abc,csam\ntmk:${PDQ},csam\npdq:${PDQ},unknown\npdq:${PDQ},csam,1.5\n${PDQ}`;
    let error: HashListError | undefined;
    try {
      parseHashList(text);
    } catch (err) {
      error = err as HashListError;
    }
    expect(error).toBeInstanceOf(HashListError);
    expect(error!.problems.map((p) => p.line)).toEqual([2, 3, 4, 5, 6]);
    expect(error!.message).toMatch(/line 2: pdq hash must be 64 hex characters/);
    expect(error!.message).toMatch(/line 3: unknown algorithm "tmk"/);
    expect(error!.message).toMatch(/line 4: unknown label "unknown"/);
    expect(error!.message).toMatch(/line 5: confidence must be a number from 0 to 1/);
    expect(error!.message).toMatch(/line 6: hash has no algorithm prefix/);
  });
});
