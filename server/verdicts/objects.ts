// Verdicts as federated objects: the JSON a Verdict is published as (docs/protocol.md), and the
// small conversions between it and our rows.
import { VERDICT_CONTEXT } from '../../shared/vocab/contexts.js';
import type { VerdictObject } from '../../shared/vocab/objects.js';
import { PIPELINE_ID } from '../../shared/hashing/index.js';
import type { Label, Method, Algorithm } from '../../shared/vocab/verdict.js';
import type { IndexedSubject } from '../matching/matcher.js';

export type RemoteVerdict = VerdictObject;

export interface Classifier {
  name: string;
  version: string;
}

/** What the verdicts module needs from federation, passed in so that it imports nothing above it. */
export interface VerdictPublisher {
  sign<T extends Record<string, unknown>>(object: T): T & { proof: unknown };
  /** Publishes and returns the activity (which the transparency log records). */
  publish(type: 'Create' | 'Update' | 'Delete', object: Record<string, unknown>, restricted: boolean): Promise<unknown>;
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

export function indexable(subjects: Array<{ algorithm: Algorithm; digest: string; quality?: number }>): IndexedSubject[] {
  return subjects.map((s) => ({ algorithm: s.algorithm, digest: Buffer.from(s.digest, 'hex'), quality: s.quality ?? null }));
}

export function verdictObject(v: {
  uri: string;
  issuer: string;
  subjects: Array<{ algorithm: Algorithm; digest: string; quality?: number }>;
  label: Label;
  confidence: number;
  method: Method;
  classifier?: Classifier;
  published: Date;
  updated?: Date;
  expires?: Date;
  supersedes?: string;
}): Record<string, unknown> {
  return {
    '@context': VERDICT_CONTEXT,
    type: 'Verdict',
    id: v.uri,
    attributedTo: v.issuer,
    subject: v.subjects.map((s) => ({ algorithm: s.algorithm, digest: s.digest, ...(s.quality === undefined ? {} : { quality: s.quality }) })),
    label: v.label,
    confidence: v.confidence,
    method: v.method,
    ...(v.classifier ? { classifier: v.classifier } : {}),
    pipeline: PIPELINE_ID,
    published: v.published.toISOString(),
    ...(v.updated ? { updated: v.updated.toISOString() } : {}),
    ...(v.expires ? { expires: v.expires.toISOString() } : {}),
    ...(v.supersedes ? { supersedes: v.supersedes } : {}),
  };
}
