// The controlled vocabulary of a Verdict, shared by the server, the scanner and the auditor.
// docs/protocol.md documents each term; the database CHECK constraints repeat these lists.

/** Labels: what a verdict says the media is. `ok` is the "known safe" side. */
export const LABELS = ['csam', 'sexual', 'gore', 'hate', 'spam', 'ok'] as const;
export type Label = (typeof LABELS)[number];

/** How a verdict was reached. */
export const METHODS = ['classifier', 'human', 'hashlist', 'consensus'] as const;
export type Method = (typeof METHODS)[number];

/** Hash algorithms a verdict subject may use, with their digest length in bytes. */
export const ALGORITHMS = { pdq: 32, sha256: 32, phash64: 8 } as const;
export type Algorithm = keyof typeof ALGORITHMS;

export function isLabel(value: unknown): value is Label {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value);
}

export function isAlgorithm(value: unknown): value is Algorithm {
  return typeof value === 'string' && Object.hasOwn(ALGORITHMS, value);
}

/** Parses a hex digest for `algorithm`, or explains why it is not one. */
export function parseDigest(algorithm: Algorithm, hex: string): Uint8Array {
  const bytes = ALGORITHMS[algorithm];
  if (typeof hex !== 'string' || hex.length !== bytes * 2 || !/^[0-9a-fA-F]+$/.test(hex)) {
    throw new RangeError(`${algorithm} digest must be ${bytes * 2} hex characters`);
  }
  return Uint8Array.from(Buffer.from(hex, 'hex'));
}
