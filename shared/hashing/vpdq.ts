/**
 * vPDQ, Meta's video similarity hash (ThreatExchange `vpdq/`, python-threatexchange's VPDQSignal):
 * the PDQ of one frame per interval (1 s by default) with its quality and timestamp. Two videos
 * match when enough of each one's distinct, good-quality frames lie within PDQ distance of some
 * frame of the other: the query-match and compared-match percentages. Frame order and timestamps
 * are not used for matching ("a bag of hashes"), only carried for explanations.
 *
 * This module is the pure part every instance must agree on: the frame list's wire form, its
 * strict parser and the match rule. Making the frames (decoding video) is server/video's.
 */

import { FRAME_NORMALIZATION } from './pipeline.js';
import { PDQ_HASH_BYTES, hammingDistance, hexToBytes } from './pdq.js';

/**
 * Names how frames were made, carried with every frame list as PIPELINE_ID is with image hashes:
 * the sampling (at k / fps, the frame shown then), the display rotation applied, then the image
 * pipeline's own normalisation of each frame.
 */
export const VIDEO_PIPELINE_ID = `vouch-vpdq-1:fps-sample:display-rotation:${FRAME_NORMALIZATION}`;

/** One hashed frame. */
export interface VpdqFrame {
  /** PDQ of the frame, 64 lower-case hex characters. */
  pdq: string;
  /** PDQ quality 0..100. */
  quality: number;
  /** Where the frame is, in seconds from the start, to the millisecond. */
  seconds: number;
}

/** HMA's defaults (python-threatexchange vpdq_util.py), the starting point of our policy. */
export const VPDQ_DEFAULTS: Readonly<VpdqMatchOptions> = Object.freeze({
  /** A frame matches a frame within this PDQ distance (inclusive), as PDQ's image radius. */
  distance: 31,
  /** Frames below this quality are left out on both sides, as for images. */
  minQuality: 50,
  /** Share of the query's distinct frames that must match: an upload mostly made of the known video. */
  queryMatchPercent: 80,
  /** Share of the compared (known) video's distinct frames that must match: 0, so a clip of a
   *  longer known video matches. */
  comparedMatchPercent: 0,
});

/**
 * Most frames a frame list may hold on the wire: 30 minutes at 1 fps. At ~80 bytes a frame that
 * is ~144 KB, inside the 256 KB an inbox accepts for one activity.
 */
export const VPDQ_MAX_FRAMES = 1800;

/** Largest timestamp accepted (a bit over 11 days): keeps the text form bounded. */
const MAX_SECONDS = 999_999.999;

/** `<pdq hex>,<quality>,<seconds>`: the compact feature string of python-threatexchange. */
const FRAME_PATTERN = /^([0-9a-f]{64}),(100|[1-9]?[0-9]),(0|[1-9][0-9]{0,5})(?:\.([0-9]{1,3}))?$/;

export class VpdqFormatError extends Error {
  override name = 'VpdqFormatError';
}

/** One frame as its wire string, e.g. `e271…055c,100,3.000` (python-threatexchange parses it). */
export function formatVpdqFrame(frame: VpdqFrame): string {
  checkFrame(frame);
  return `${frame.pdq},${frame.quality},${frame.seconds.toFixed(3)}`;
}

/** A frame list in its wire form: one string per frame, in the order given. */
export function encodeVpdq(frames: readonly VpdqFrame[]): string[] {
  if (frames.length > VPDQ_MAX_FRAMES) throw new RangeError(`${frames.length} frames, at most ${VPDQ_MAX_FRAMES}`);
  return frames.map(formatVpdqFrame);
}

/**
 * Parses a frame list from an untrusted source. Strict: an array of 1..VPDQ_MAX_FRAMES strings
 * in the form formatVpdqFrame writes (lower-case hex, quality 0..100, seconds with at most three
 * decimals), timestamps never going back. Anything else is a VpdqFormatError naming the entry.
 */
export function parseVpdq(value: unknown): VpdqFrame[] {
  if (!Array.isArray(value)) throw new VpdqFormatError('a vPDQ frame list must be an array of strings');
  if (value.length === 0) throw new VpdqFormatError('a vPDQ frame list must hold at least one frame');
  if (value.length > VPDQ_MAX_FRAMES) throw new VpdqFormatError(`a vPDQ frame list holds at most ${VPDQ_MAX_FRAMES} frames, got ${value.length}`);
  const frames: VpdqFrame[] = [];
  let previous = 0;
  for (let i = 0; i < value.length; i++) {
    const entry: unknown = value[i];
    const m = typeof entry === 'string' ? FRAME_PATTERN.exec(entry) : null;
    if (!m) throw new VpdqFormatError(`vPDQ frame ${i} is not '<64 lower-case hex>,<quality 0-100>,<seconds>'`);
    const seconds = Number(`${m[3]}.${m[4] ?? '0'}`);
    if (seconds < previous) throw new VpdqFormatError(`vPDQ frame ${i} goes back in time (${seconds} s after ${previous} s)`);
    previous = seconds;
    frames.push({ pdq: m[1], quality: Number(m[2]), seconds });
  }
  return frames;
}

function checkFrame(frame: VpdqFrame): void {
  if (!/^[0-9a-f]{64}$/.test(frame.pdq)) throw new RangeError(`not a PDQ hash: ${frame.pdq}`);
  if (!Number.isInteger(frame.quality) || frame.quality < 0 || frame.quality > 100) throw new RangeError(`PDQ quality must be 0..100, got ${frame.quality}`);
  if (!(frame.seconds >= 0 && frame.seconds <= MAX_SECONDS)) throw new RangeError(`frame time must be 0..${MAX_SECONDS} s, got ${frame.seconds}`);
}

export interface VpdqMatchOptions {
  distance: number;
  minQuality: number;
  queryMatchPercent: number;
  comparedMatchPercent: number;
}

export interface VpdqMatch {
  /** Share (0..100) of the query's distinct good frames within `distance` of a compared frame. */
  queryMatchPercent: number;
  /** Share (0..100) of the compared video's distinct good frames within `distance` of a query frame. */
  comparedMatchPercent: number;
  /** Both shares reach their thresholds (never when either side has no good frame). */
  isMatch: boolean;
}

/**
 * The distinct PDQs of the frames of at least `minQuality`, as bytes: python-threatexchange's
 * dedupe (the same hash anywhere in the video counts once, so a still video is one frame) and
 * quality filter. Which of the repeats is kept does not matter, timestamps are not compared.
 */
export function distinctGoodFrames(frames: readonly VpdqFrame[], minQuality: number): Uint8Array[] {
  const seen = new Set<string>();
  const out: Uint8Array[] = [];
  for (const f of frames) {
    if (f.quality < minQuality || seen.has(f.pdq)) continue;
    seen.add(f.pdq);
    out.push(hexToBytes(f.pdq, PDQ_HASH_BYTES));
  }
  return out;
}

function countWithin(from: readonly Uint8Array[], to: readonly Uint8Array[], distance: number): number {
  let count = 0;
  for (const a of from) {
    for (const b of to) {
      if (hammingDistance(a, b) <= distance) {
        count++;
        break;
      }
    }
  }
  return count;
}

/**
 * HMA's vPDQ rule (python-threatexchange match_VPDQ_hash_brute and VPDQSignal.compare_hash):
 * brute force over both frame sets, O(query × compared) distance computations. Either side
 * without a good frame matches nothing (the reference C++ returns 0 % there too).
 */
export function matchVpdq(
  query: readonly VpdqFrame[],
  compared: readonly VpdqFrame[],
  options: Partial<VpdqMatchOptions> = {},
): VpdqMatch {
  const o = { ...VPDQ_DEFAULTS, ...options };
  const q = distinctGoodFrames(query, o.minQuality);
  const c = distinctGoodFrames(compared, o.minQuality);
  if (q.length === 0 || c.length === 0) return { queryMatchPercent: 0, comparedMatchPercent: 0, isMatch: false };
  const queryMatchPercent = (countWithin(q, c, o.distance) * 100) / q.length;
  const comparedMatchPercent = (countWithin(c, q, o.distance) * 100) / c.length;
  return {
    queryMatchPercent,
    comparedMatchPercent,
    isMatch: queryMatchPercent >= o.queryMatchPercent && comparedMatchPercent >= o.comparedMatchPercent,
  };
}
