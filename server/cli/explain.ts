// `vouch explain`: a decision's explanation as an admin reads it.
import type { Explanation, ScannedFrames, VideoMatchShares } from '../trust/decide.js';

const pct = (x: number) => `${(x * 100).toFixed(1)}%`;
const num = (x: number) => x.toFixed(3);

/** A video verdict of our scanner: the frames behind it, e.g. `frames behind it (of 16 sampled): 3.5 s sexual 0.912`. */
export function formatScannedFrames(s: ScannedFrames): string {
  return `frames behind it (of ${s.sampled} sampled): ${s.frames.map((f) => `${f.seconds} s ${f.label} ${num(f.confidence)}`).join(', ')}`;
}

/** A match between two videos, e.g. `video match: 90.0% of this video's frames, 45.0% of that one's`. */
export function formatVideoMatch(v: VideoMatchShares): string {
  return `video match: ${v.queryMatchPercent.toFixed(1)}% of this video's frames, ${v.comparedMatchPercent.toFixed(1)}% of that one's`;
}

export function formatExplanation(e: Explanation): string {
  const lines = [`${e.outcome.toUpperCase()}${e.label ? ` (${e.label})` : ''}: ${e.reason}`, ''];
  if (e.localVerdict) {
    const v = e.localVerdict;
    lines.push(`Decided by our own verdict ${v.uri}: ${v.label} at ${num(v.confidence)} by ${v.method}${v.classifier ? ` (${v.classifier})` : ''}, distance ${v.distance}.`);
    if (v.scannedFrames) lines.push(`  ${formatScannedFrames(v.scannedFrames)}`);
    if (v.videoMatch) lines.push(`  ${formatVideoMatch(v.videoMatch)}`);
  }
  lines.push(`Verdicts: ${e.verdicts.local} local, ${e.verdicts.peer} from peers, ${e.verdicts.ignored} ignored.`);
  const active = e.labels.filter((l) => l.r > 0 || l.s > 0 || l.sameImageOk > 0 || l.cannotSee.length > 0);
  if (active.length > 0) {
    lines.push('', 'label      for (r)   against (s)  same file  p(abuse)  uncertainty  closest  block at');
    for (const l of active) {
      lines.push(
        `${l.label.padEnd(10)} ${num(l.r).padStart(7)}   ${num(l.s).padStart(9)}  ${num(l.sameImageOk).padStart(9)}  ${pct(l.p).padStart(8)}  ${pct(l.u).padStart(11)}  ` +
          `${(l.closestTier ?? '-').padEnd(7)}  p>=${l.blockProbability}, r>=${l.minEvidence}`,
      );
    }
    for (const l of active) if (l.cannotSee.length > 0) lines.push(`  cannot see '${l.label}': ${l.cannotSee.join(', ')}`);
  }
  const why = { 'outranked-by-own-human': 'its issuer’s human verdict outranks it', 'looser-than-evidence': 'matches more loosely than the evidence against it', 'cannot-see-label': 'its classifier cannot see the label' } as const;
  if (e.top.length > 0) {
    lines.push('', 'Verdicts:');
    for (const c of e.top) {
      const who = `${c.label} ${num(c.confidence)} by ${c.method}${c.classifier ? ` ${c.classifier}` : ''}`;
      const dedup = c.deduplicated ? ` (not counted: repeat of ${c.repeatOf})` : c.notCounted ? ` (not counted: ${why[c.notCounted]})` : '';
      const from = c.local ? 'us' : c.issuer;
      lines.push(`  ${who} from ${from}: weight ${num(c.weight)} x match ${num(c.match)} (${c.tier}, distance ${c.distance}) = ${num(c.contribution)}${dedup}`);
      if (c.scannedFrames) lines.push(`      ${formatScannedFrames(c.scannedFrames)}`);
      if (c.videoMatch) lines.push(`      ${formatVideoMatch(c.videoMatch)}`);
      for (const p of c.paths ?? []) lines.push(`      trust path ${p.via.join(' -> ')}: ${num(p.contribution)}`);
    }
    if (e.omitted > 0) lines.push(`  ... and ${e.omitted} more`);
  }
  lines.push('', `Policy ${e.policy.version} (${e.policy.hash}).`);
  return `${lines.join('\n')}\n`;
}
