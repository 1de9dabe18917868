// Verdicts as federated objects: the JSON a Verdict is published as (docs/protocol.md), and the
// small conversions between it and our rows.
import { VERDICT_CONTEXT } from '../../shared/vocab/contexts.js';
import type { BasisEntry, VerdictObject, VerdictSubject } from '../../shared/vocab/objects.js';
import { ALGORITHM_REGISTRY, frameSubjects, framesOfSubjects, parseFrames } from '../../shared/algorithms/index.js';
import type { BasisSource } from '../trust/decide.js';
import { PIPELINE_ID } from '../../shared/hashing/index.js';
import { VIDEO_PIPELINE_ID } from '../../shared/hashing/vpdq.js';
import type { Label, Method, Algorithm } from '../../shared/vocab/verdict.js';
import type { IndexedSubject } from '../matching/matcher.js';

export type RemoteVerdict = VerdictObject;

export interface Classifier {
  name: string;
  version: string;
}

export class VerdictNotFoundError extends Error {
  constructor(uri: string, why = 'no such local verdict') {
    super(`${uri}: ${why}`);
  }
}

/** An actor touched a verdict stored under another issuer. */
export class VerdictOwnershipError extends Error {}

/** Stored as `name@version`; the version is everything after the last `@`. */
export function classifierText(c: Classifier): string {
  return `${c.name}@${c.version}`;
}

export function parseClassifierText(text: string): Classifier {
  const at = text.lastIndexOf('@');
  return at > 0 ? { name: text.slice(0, at), version: text.slice(at + 1) } : { name: text, version: 'unknown' };
}

/** A consensus verdict's basis as published: each source's issuer as `attributedTo`. */
export function basisToWire(basis: readonly BasisSource[]): BasisEntry[] {
  return basis.map((b) => ({
    attributedTo: b.issuer,
    method: b.method,
    ...(b.classifier ? { classifier: { name: b.classifier.name, version: b.classifier.version } } : {}),
    contribution: b.contribution,
  }));
}

/** The basis of a stored verdict document (validated when it arrived), or null when it has none. */
export function basisFromDocument(basis: unknown): BasisSource[] | null {
  if (!Array.isArray(basis)) return null;
  return (basis as BasisEntry[]).map((b) => ({
    issuer: b.attributedTo,
    method: b.method,
    classifier: b.classifier ? { name: b.classifier.name, version: b.classifier.version } : null,
    contribution: b.contribution,
  }));
}

/** A subject as stored: one digest; a frame list's frames are one such subject each (with `seconds`). */
export interface StoredSubject {
  algorithm: Algorithm;
  /** Lower-case hex. */
  digest: string;
  quality?: number;
  /** Frame subjects (vPDQ): where the frame first appears. */
  seconds?: number;
}

/** Subjects from the wire as stored: each frame list becomes one subject per distinct frame. */
export function storedSubjects(subjects: readonly VerdictSubject[]): StoredSubject[] {
  return subjects.flatMap((s): StoredSubject[] =>
    s.frames !== undefined
      ? frameSubjects(parseFrames(s.frames), ALGORITHM_REGISTRY.get(s.algorithm))
      : [{ algorithm: s.algorithm, digest: s.digest, ...(s.quality === undefined ? {} : { quality: s.quality }) }],
  );
}

/** Stored subjects as published: the frames of a frame-list algorithm gathered into one subject, after the others. */
export function wireSubjects(subjects: readonly StoredSubject[]): VerdictSubject[] {
  const out: VerdictSubject[] = [];
  const frames = new Map<string, StoredSubject[]>();
  for (const s of subjects) {
    if (ALGORITHM_REGISTRY.has(s.algorithm) && ALGORITHM_REGISTRY.get(s.algorithm).frameList) frames.set(s.algorithm, [...(frames.get(s.algorithm) ?? []), s]);
    else out.push({ algorithm: s.algorithm, digest: s.digest, ...(s.quality === undefined ? {} : { quality: s.quality }) });
  }
  for (const [algorithm, list] of frames) out.push({ algorithm, frames: framesOfSubjects(list) });
  return out;
}

export function indexable(subjects: Array<{ algorithm: Algorithm; digest: string; quality?: number }>): IndexedSubject[] {
  return subjects.map((s) => ({ algorithm: s.algorithm, digest: Buffer.from(s.digest, 'hex'), quality: s.quality ?? null }));
}

export function verdictObject(v: {
  uri: string;
  issuer: string;
  subjects: readonly StoredSubject[];
  label: Label;
  confidence: number;
  method: Method;
  classifier?: Classifier;
  basis?: readonly BasisSource[] | null;
  published: Date;
  updated?: Date;
  expires?: Date;
  supersedes?: string;
}): Record<string, unknown> {
  const subject = wireSubjects(v.subjects);
  return {
    '@context': VERDICT_CONTEXT,
    type: 'Verdict',
    id: v.uri,
    attributedTo: v.issuer,
    subject,
    label: v.label,
    confidence: v.confidence,
    method: v.method,
    ...(v.classifier ? { classifier: v.classifier } : {}),
    ...(v.basis && v.basis.length > 0 ? { basis: basisToWire(v.basis) } : {}),
    // A verdict about a video names how its frames were made; any other, the image pipeline.
    pipeline: subject.some((s) => s.frames !== undefined) ? VIDEO_PIPELINE_ID : PIPELINE_ID,
    published: v.published.toISOString(),
    ...(v.updated ? { updated: v.updated.toISOString() } : {}),
    ...(v.expires ? { expires: v.expires.toISOString() } : {}),
    ...(v.supersedes ? { supersedes: v.supersedes } : {}),
  };
}
