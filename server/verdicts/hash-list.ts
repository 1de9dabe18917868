// Hash lists as partners exchange them: one hash per line, optional label and confidence columns.
//   pdq:<64 hex>[,label[,confidence]]     sha256:<64 hex>...     or bare hex with a default algorithm
// (any algorithm of the registry, shared/algorithms, as the prefix).
// Separators: comma, tab or spaces. '#' starts a comment line; a header line is skipped.
import { ALGORITHM_REGISTRY, DigestFormatError } from '../../shared/algorithms/index.js';
import { isLabel, type Algorithm, type Label } from '../../shared/vocab/verdict.js';

export interface HashListEntry {
  line: number;
  algorithm: Algorithm;
  digest: string;
  label: Label;
  confidence: number;
}

export interface HashListDefaults {
  algorithm?: Algorithm;
  label?: Label;
  confidence?: number;
}

export class HashListError extends Error {
  override name = 'HashListError';
  constructor(readonly problems: Array<{ line: number; message: string }>) {
    const shown = problems.slice(0, 20).map((p) => `  line ${p.line}: ${p.message}`);
    const more = problems.length > 20 ? `\n  ... and ${problems.length - 20} more` : '';
    super(`hash list has ${problems.length} invalid line(s), nothing imported:\n${shown.join('\n')}${more}`);
  }
}

const HEADER = new RegExp(`^(hash|digest|${ALGORITHM_REGISTRY.names.join('|')})([\\s,\\t]|$)`, 'i');

function parseLine(text: string, line: number, defaults: HashListDefaults): HashListEntry {
  const [hashField, labelField, confidenceField, ...rest] = text.split(/[,\t]|\s+/).filter((f) => f !== '');
  if (rest.length > 0) throw new Error(`expected at most 3 columns (hash, label, confidence), got ${3 + rest.length}`);
  let algorithm = defaults.algorithm;
  let hex = hashField;
  const colon = hashField.indexOf(':');
  if (colon >= 0) {
    const prefix = hashField.slice(0, colon).toLowerCase();
    if (!ALGORITHM_REGISTRY.has(prefix)) throw new Error(`unknown algorithm "${prefix}" (expected ${ALGORITHM_REGISTRY.names.join(', ')})`);
    algorithm = prefix;
    hex = hashField.slice(colon + 1);
  }
  if (!algorithm) {
    throw new Error(`hash has no algorithm prefix (${ALGORITHM_REGISTRY.names.map((n) => `${n}:`).join(', ')}) and no default algorithm was given`);
  }
  // Lists are written by people and other tools: either case is accepted, stored lower-case.
  hex = hex.toLowerCase();
  try {
    ALGORITHM_REGISTRY.get(algorithm).parse(hex);
  } catch (err) {
    if (err instanceof DigestFormatError) throw new Error(`${algorithm} hash must be ${ALGORITHM_REGISTRY.get(algorithm).digestBytes * 2} hex characters`);
    throw err;
  }
  const label = labelField ?? defaults.label;
  if (label === undefined) throw new Error('no label column and no default label was given');
  if (!isLabel(label)) throw new Error(`unknown label "${label}"`);
  let confidence = defaults.confidence ?? 1;
  if (confidenceField !== undefined) {
    confidence = Number(confidenceField);
    if (!Number.isFinite(confidence) || confidence < 0 || confidence > 1) {
      throw new Error(`confidence must be a number from 0 to 1, got "${confidenceField}"`);
    }
  }
  return { line, algorithm, digest: hex, label, confidence };
}

/** Parses a whole list; any invalid line rejects the list, so a half-imported list never happens. */
export function parseHashList(text: string, defaults: HashListDefaults = {}): HashListEntry[] {
  const entries: HashListEntry[] = [];
  const problems: Array<{ line: number; message: string }> = [];
  text.split(/\r?\n/).forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '' || trimmed.startsWith('#')) return;
    if (i === 0 && HEADER.test(trimmed) && !/[0-9a-f]{16}/i.test(trimmed)) return;
    try {
      entries.push(parseLine(trimmed, i + 1, defaults));
    } catch (err) {
      problems.push({ line: i + 1, message: (err as Error).message });
    }
  });
  if (problems.length > 0) throw new HashListError(problems);
  return entries;
}
