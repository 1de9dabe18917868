// The controlled vocabulary of a Verdict, shared by the server, the scanner and the auditor.
// docs/protocol.md documents each term; the database CHECK constraints repeat the labels and
// methods, the `hash_algorithms` table the registry's algorithms.
import { ALGORITHM_REGISTRY, type AlgorithmRegistry } from '../algorithms/index.js';

/** Labels: what a verdict says the media is. `ok` is the "known safe" side. */
export const LABELS = ['csam', 'sexual', 'gore', 'hate', 'spam', 'ok'] as const;
export type Label = (typeof LABELS)[number];

/** How a verdict was reached. */
export const METHODS = ['classifier', 'human', 'hashlist', 'consensus'] as const;
export type Method = (typeof METHODS)[number];

/**
 * The name of a hash algorithm the registry knows (shared/algorithms). The registry, not this
 * vocabulary, lists them: each one's digest length, format and matching live in its own file.
 */
export type Algorithm = string;

/** Digest length in bytes of each registered algorithm (for docs, tests and error messages). */
export const ALGORITHMS: Readonly<Record<Algorithm, number>> = Object.freeze(
  Object.fromEntries(ALGORITHM_REGISTRY.all.map((a) => [a.name, a.digestBytes])),
);

export function isLabel(value: unknown): value is Label {
  return typeof value === 'string' && (LABELS as readonly string[]).includes(value);
}

export function isAlgorithm(value: unknown, registry: AlgorithmRegistry = ALGORITHM_REGISTRY): value is Algorithm {
  return registry.has(value);
}

/**
 * Parses a hex digest for `algorithm` typed by a person (query string, command line: either case),
 * or throws a DigestFormatError saying why not. Subjects from peers are parsed strictly instead.
 */
export function parseDigest(algorithm: Algorithm, hex: string, registry: AlgorithmRegistry = ALGORITHM_REGISTRY): Uint8Array {
  return registry.get(algorithm).parse(typeof hex === 'string' ? hex.toLowerCase() : hex);
}
