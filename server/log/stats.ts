/**
 * Counts everyone can compute from a transparency log: per label and method, how many verdicts
 * were issued, corrected, retracted and superseded, per month, and how long retractions took.
 * Pure: it reads decoded entries in log order (`LogStatsAccumulator.add`) and knows nothing of
 * HTTP or the store, so `vouch audit --stats` (entries fetched anonymously) and the console's Log
 * page (our own entries) count the same way. Normative meaning of each count: docs/audit.md,
 * "vouch audit --stats".
 *
 * What one entry tells (entry.ts): a version-2 entry's public part and a readable version-1
 * entry both have the activity's shape (type, published, object with id, label, method,
 * classifier, published, updated, supersedes, deleted), so both are read the same way. A withheld
 * version-1 entry tells nothing but that it exists: it is counted, under no label.
 *
 * Rules (each event counts under the verdict's label and method at the time of the event):
 *  - `Create` of a Verdict: issued, in the month of the verdict's `published` (else the activity's).
 *  - `Update` of a Verdict: updated; its label becomes the verdict's label from then on.
 *  - a `Create` whose verdict `supersedes` another: that other verdict is superseded, at the new
 *    verdict's time (the issuer also logs a Delete of it, which then counts nothing more).
 *  - `Delete` of a verdict not yet ended: retracted, at the Tombstone's `deleted` (else the
 *    activity's `published`); time to retraction = that time − the verdict's `published`.
 *  - A verdict first met in an Update, Delete or `supersedes` (its Create withheld) carries the
 *    label the Update gave, else `(withheld)`, and method `(unknown)` until an entry names it.
 *  - Hostile input never throws: times that are not RFC 3339 within years 1970–9999 count in the
 *    month `(unknown)` and give no duration; labels and names are cut to a bounded length; a second
 *    Create of one id, or a second Delete of one verdict, is counted as `repeated` and nowhere else.
 */
import { ENTRY_VERSION_MEMBER } from './entry.js';

/** The label of a verdict whose labelled entries were all withheld. */
export const WITHHELD_LABEL = '(withheld)';
/** The method of a verdict no readable entry names a method for. */
export const UNKNOWN_METHOD = '(unknown)';
/** The month of an event without a usable time. */
export const UNKNOWN_MONTH = '(unknown)';
/** What a label or method that is not a string counts as. */
export const INVALID_VALUE = '(invalid)';

const MAX_LABEL = 64;
const MAX_CLASSIFIER = 200;
const MAX_ID = 2048;

/** What one entry lets a reader count. */
export type LoggedEntry =
  | { readonly kind: 'withheld' }
  | { readonly kind: 'unreadable' }
  | { readonly kind: 'described'; readonly version: 1 | 2; readonly activity: Readonly<Record<string, unknown>> };

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/**
 * Entry bytes (null: withheld) as the statistics read them: the public part of version 2, the
 * activity of version 1. Fields are read, not validated: checking each entry against entry.ts's
 * strict rules is the audit's job (it reports `entry_malformed`), and skipping the JCS and schema
 * checks here reads entries about seven times faster (docs/benchmarks.md).
 */
export function describeEntry(bytes: Uint8Array | null): LoggedEntry {
  if (bytes === null) return { kind: 'withheld' };
  let value: unknown;
  try {
    value = JSON.parse(utf8.decode(bytes));
  } catch {
    return { kind: 'unreadable' };
  }
  const entry = record(value);
  if (!entry) return { kind: 'unreadable' };
  if (!(ENTRY_VERSION_MEMBER in entry)) return { kind: 'described', version: 1, activity: entry };
  const publicPart = record(entry.public);
  return entry[ENTRY_VERSION_MEMBER] === 2 && publicPart ? { kind: 'described', version: 2, activity: publicPart } : { kind: 'unreadable' };
}

export type Outcome = 'live' | 'retracted' | 'superseded';

/** One verdict as the log shows it (the tidy, one-row-per-verdict view). */
export interface VerdictRow {
  readonly id: string;
  /** Its label after its last readable Create or Update (or `(withheld)`). */
  readonly label: string;
  readonly method: string;
  /** `name@version`, or null. */
  readonly classifier: string | null;
  /** Index of its Create, or null when that entry was not read. */
  readonly index: number | null;
  readonly issuedAt: string | null;
  readonly outcome: Outcome;
  readonly endedAt: string | null;
  /** Seconds from issue to retraction (retracted verdicts with both times usable), else null. */
  readonly secondsToRetraction: number | null;
  readonly updates: number;
}

export interface EventCounts {
  readonly issued: number;
  readonly updated: number;
  readonly retracted: number;
  readonly superseded: number;
}

/** Counts per label and method over the whole log, with the time to retraction. */
export interface GroupStats extends EventCounts {
  readonly label: string;
  readonly method: string;
  /** Retractions with a usable duration (the others had an unusable or unknown time). */
  readonly retractionTimed: number;
  readonly retractionMedianSeconds: number | null;
  readonly retractionP90Seconds: number | null;
  /** The durations, ascending (for charts and for merging instances). */
  readonly retractionSeconds: readonly number[];
}

/** Counts per month (`YYYY-MM`, UTC, or `(unknown)`), label and method. */
export interface MonthStats extends EventCounts {
  readonly month: string;
  readonly label: string;
  readonly method: string;
}

export interface EntryCounts {
  /** Entries read (every index the log served). */
  readonly total: number;
  readonly version1: number;
  readonly version2: number;
  /** Version-1 entries withheld from this reader: counted, label unknown. */
  readonly withheld: number;
  /** Served entries that do not decode. */
  readonly unreadable: number;
  /** Readable entries that are not about a verdict. */
  readonly other: number;
  /** A second Create of one id, or a second Delete of one verdict: counted nowhere else. */
  readonly repeated: number;
}

export interface LogStatistics {
  readonly entries: EntryCounts;
  /** Sorted by label, then method. */
  readonly groups: readonly GroupStats[];
  /** Sorted by month (`(unknown)` last), label, method. */
  readonly months: readonly MonthStats[];
  /** In order of first appearance in the log. */
  readonly verdicts: readonly VerdictRow[];
}

/**
 * The p-quantile of ascending `sorted` by linear interpolation between closest ranks (R's default
 * type 7, numpy's default): h = (n − 1)·p. Null for an empty list.
 */
export function quantile(sorted: readonly number[], p: number): number | null {
  if (sorted.length === 0) return null;
  const h = (sorted.length - 1) * p;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo]);
}

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/i;

/** Milliseconds since the epoch of an RFC 3339 time within years 1970–9999, else null. */
export function instant(value: unknown): number | null {
  if (typeof value !== 'string' || value.length > 40) return null;
  const m = RFC3339.exec(value);
  if (!m) return null;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (month < 1 || month > 12 || day < 1 || day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return null;
  const t = Date.parse(value);
  if (!Number.isFinite(t)) return null;
  const utcYear = new Date(t).getUTCFullYear();
  return utcYear >= 1970 && utcYear <= 9999 ? t : null;
}

const monthOf = (t: number | null): string => (t === null ? UNKNOWN_MONTH : new Date(t).toISOString().slice(0, 7));
const isoOf = (t: number | null): string | null => (t === null ? null : new Date(t).toISOString());

const record = (v: unknown): Record<string, unknown> | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

/** `value` cut to `max` UTF-16 units with an ellipsis, never in the middle of a surrogate pair. */
function bounded(value: string, max: number): string {
  if (value.length <= max) return value;
  const cut = /[\uD800-\uDBFF]$/.test(value.slice(0, max - 1)) ? max - 2 : max - 1;
  return `${value.slice(0, cut)}…`;
}

/** A label or method as counted: strings cut to 64 characters, anything else `(invalid)`. */
function name(value: unknown): string {
  if (typeof value !== 'string' || value.length === 0) return INVALID_VALUE;
  return bounded(value, MAX_LABEL);
}

function classifierOf(value: unknown): string | null {
  const c = record(value);
  if (!c || typeof c.name !== 'string') return null;
  return bounded(`${c.name}@${typeof c.version === 'string' ? c.version : ''}`, MAX_CLASSIFIER);
}

function idOf(value: unknown): string | null {
  if (typeof value === 'string') return value.length > 0 && value.length <= MAX_ID ? value : null;
  const id = record(value)?.id;
  return typeof id === 'string' && id.length > 0 && id.length <= MAX_ID ? id : null;
}

interface VerdictState {
  readonly id: string;
  label: string;
  method: string;
  classifier: string | null;
  index: number | null;
  issuedAt: number | null;
  outcome: Outcome;
  endedAt: number | null;
  /** Whether a Delete of it was read (a superseded verdict's own Delete is expected, once). */
  deleteRead: boolean;
  updates: number;
}

type MutableCounts = { issued: number; updated: number; retracted: number; superseded: number };
const zeroCounts = (): MutableCounts => ({ issued: 0, updated: 0, retracted: 0, superseded: 0 });
// Map keys of several names: JSON, so no character of a hostile label can split them wrongly.
const keyOf = (...names: string[]): string => JSON.stringify(names);
const namesOf = (key: string): string[] => JSON.parse(key) as string[];

/** Reads entries in log order (`add`) and keeps the counts; `statistics()` may be called at any point. */
export class LogStatsAccumulator {
  private readonly verdicts = new Map<string, VerdictState>();
  private readonly groups = new Map<string, MutableCounts & { durations: number[] }>();
  private readonly months = new Map<string, MutableCounts>();
  private readonly entries = { total: 0, version1: 0, version2: 0, withheld: 0, unreadable: 0, other: 0, repeated: 0 };

  /** Counts the entry at `index`; entries must come in log order. */
  add(index: number, entry: LoggedEntry): void {
    this.entries.total++;
    if (entry.kind === 'withheld') {
      this.entries.withheld++;
      return;
    }
    if (entry.kind === 'unreadable') {
      this.entries.unreadable++;
      return;
    }
    if (entry.version === 1) this.entries.version1++;
    else this.entries.version2++;
    const activity = entry.activity;
    const object = record(activity.object);
    const activityTime = instant(activity.published);
    const id = idOf(activity.object);
    if (id === null) {
      this.entries.other++;
      return;
    }
    if ((activity.type === 'Create' || activity.type === 'Update') && object?.type === 'Verdict') {
      if (activity.type === 'Create') this.created(id, object, index, instant(object.published) ?? activityTime);
      else this.updated(id, object, instant(object.updated) ?? activityTime);
    } else if (activity.type === 'Delete' && (object === null || object.formerType === undefined || object.formerType === 'Verdict')) {
      this.deleted(id, instant(object?.deleted) ?? activityTime);
    } else {
      this.entries.other++;
    }
  }

  private verdict(id: string): VerdictState {
    let v = this.verdicts.get(id);
    if (!v) {
      v = { id, label: WITHHELD_LABEL, method: UNKNOWN_METHOD, classifier: null, index: null, issuedAt: null, outcome: 'live', endedAt: null, deleteRead: false, updates: 0 };
      this.verdicts.set(id, v);
    }
    return v;
  }

  private count(kind: keyof MutableCounts, at: number | null, v: VerdictState, duration?: number): void {
    const groupKey = keyOf(v.label, v.method);
    let group = this.groups.get(groupKey);
    if (!group) this.groups.set(groupKey, (group = { ...zeroCounts(), durations: [] }));
    group[kind]++;
    if (duration !== undefined) group.durations.push(duration);
    const monthKey = keyOf(monthOf(at), v.label, v.method);
    let month = this.months.get(monthKey);
    if (!month) this.months.set(monthKey, (month = zeroCounts()));
    month[kind]++;
  }

  private created(id: string, object: Record<string, unknown>, index: number, at: number | null): void {
    const v = this.verdict(id);
    if (v.index !== null) {
      this.entries.repeated++;
      return;
    }
    v.label = name(object.label);
    v.method = name(object.method);
    v.classifier = classifierOf(object.classifier);
    v.index = index;
    v.issuedAt = at;
    this.count('issued', at, v);
    const supersedes = idOf(object.supersedes);
    if (supersedes !== null && supersedes !== id) {
      const old = this.verdict(supersedes);
      if (old.outcome === 'live') {
        old.outcome = 'superseded';
        old.endedAt = at;
        this.count('superseded', at, old);
      }
    }
  }

  private updated(id: string, object: Record<string, unknown>, at: number | null): void {
    const v = this.verdict(id);
    if (object.label !== undefined) v.label = name(object.label);
    if (object.method !== undefined && v.method === UNKNOWN_METHOD) v.method = name(object.method);
    if (v.classifier === null) v.classifier = classifierOf(object.classifier);
    v.updates++;
    this.count('updated', at, v);
  }

  private deleted(id: string, at: number | null): void {
    const v = this.verdict(id);
    const first = !v.deleteRead;
    v.deleteRead = true;
    if (v.outcome !== 'live') {
      if (!(first && v.outcome === 'superseded')) this.entries.repeated++;
      return;
    }
    v.outcome = 'retracted';
    v.endedAt = at;
    const duration = retractionSeconds(v.issuedAt, at);
    this.count('retracted', at, v, duration ?? undefined);
  }

  statistics(): LogStatistics {
    const groups = [...this.groups].map(([key, g]) => {
      const [label, method] = namesOf(key);
      return groupStats(label, method, g, g.durations);
    });
    const months = [...this.months].map(([key, m]) => {
      const [month, label, method] = namesOf(key);
      return { month, label, method, ...m };
    });
    const verdicts = [...this.verdicts.values()].map(
      (v): VerdictRow => ({
        id: v.id,
        label: v.label,
        method: v.method,
        classifier: v.classifier,
        index: v.index,
        issuedAt: isoOf(v.issuedAt),
        outcome: v.outcome,
        endedAt: isoOf(v.endedAt),
        secondsToRetraction: v.outcome === 'retracted' ? retractionSeconds(v.issuedAt, v.endedAt) : null,
        updates: v.updates,
      }),
    );
    return { entries: { ...this.entries }, groups: sortGroups(groups), months: sortMonths(months), verdicts };
  }
}

function retractionSeconds(issuedAt: number | null, endedAt: number | null): number | null {
  if (issuedAt === null || endedAt === null || endedAt < issuedAt) return null;
  return (endedAt - issuedAt) / 1000;
}

function groupStats(label: string, method: string, counts: EventCounts, durations: readonly number[]): GroupStats {
  const sorted = [...durations].sort((a, b) => a - b);
  return {
    label,
    method,
    issued: counts.issued,
    updated: counts.updated,
    retracted: counts.retracted,
    superseded: counts.superseded,
    retractionTimed: sorted.length,
    retractionMedianSeconds: quantile(sorted, 0.5),
    retractionP90Seconds: quantile(sorted, 0.9),
    retractionSeconds: sorted,
  };
}

const byText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const sortGroups = (groups: GroupStats[]): GroupStats[] => groups.sort((a, b) => byText(a.label, b.label) || byText(a.method, b.method));
const sortMonths = (months: MonthStats[]): MonthStats[] =>
  months.sort(
    (a, b) => Number(a.month === UNKNOWN_MONTH) - Number(b.month === UNKNOWN_MONTH) || byText(a.month, b.month) || byText(a.label, b.label) || byText(a.method, b.method),
  );

/** Per month: verdicts issued, those by a classifier and by a human, and retractions (the classifier-versus-human view). */
export function methodsPerMonth(months: readonly MonthStats[]): Array<{ month: string; issued: number; classifier: number; human: number; retracted: number }> {
  const byMonth = new Map<string, { month: string; issued: number; classifier: number; human: number; retracted: number }>();
  for (const m of months) {
    let row = byMonth.get(m.month);
    if (!row) byMonth.set(m.month, (row = { month: m.month, issued: 0, classifier: 0, human: 0, retracted: 0 }));
    row.issued += m.issued;
    row.retracted += m.retracted;
    if (m.method === 'classifier') row.classifier += m.issued;
    if (m.method === 'human') row.human += m.issued;
  }
  return [...byMonth.values()];
}

/** A duration for people: seconds, minutes, hours or days ('' for none). */
export function formatDuration(seconds: number | null): string {
  if (seconds === null) return '';
  if (seconds < 120) return `${Math.round(seconds)} s`;
  if (seconds < 2 * 3600) return `${(seconds / 60).toFixed(1)} min`;
  if (seconds < 2 * 86_400) return `${(seconds / 3600).toFixed(1)} h`;
  return `${(seconds / 86_400).toFixed(1)} d`;
}

/** Statistics of one log, read whole: every entry in log order, from index 0. */
export function logStatistics(entries: Iterable<LoggedEntry>): LogStatistics {
  const acc = new LogStatsAccumulator();
  let index = 0;
  for (const entry of entries) acc.add(index++, entry);
  return acc.statistics();
}

/** The counts of several logs added up (for charts over several instances); verdict rows concatenated. */
export function mergeStatistics(all: readonly LogStatistics[]): LogStatistics {
  const entries = { total: 0, version1: 0, version2: 0, withheld: 0, unreadable: 0, other: 0, repeated: 0 };
  const groups = new Map<string, { counts: MutableCounts; durations: number[] }>();
  const months = new Map<string, MonthStats & MutableCounts>();
  const add = (into: MutableCounts, from: EventCounts) => {
    into.issued += from.issued;
    into.updated += from.updated;
    into.retracted += from.retracted;
    into.superseded += from.superseded;
  };
  for (const stats of all) {
    for (const key of Object.keys(entries) as Array<keyof EntryCounts>) entries[key] += stats.entries[key];
    for (const g of stats.groups) {
      const key = keyOf(g.label, g.method);
      let into = groups.get(key);
      if (!into) groups.set(key, (into = { counts: zeroCounts(), durations: [] }));
      add(into.counts, g);
      for (const s of g.retractionSeconds) into.durations.push(s);
    }
    for (const m of stats.months) {
      const key = keyOf(m.month, m.label, m.method);
      let into = months.get(key);
      if (!into) months.set(key, (into = { month: m.month, label: m.label, method: m.method, ...zeroCounts() }));
      add(into, m);
    }
  }
  return {
    entries,
    groups: sortGroups([...groups].map(([key, g]) => {
      const [label, method] = namesOf(key);
      return groupStats(label, method, g.counts, g.durations);
    })),
    months: sortMonths([...months.values()]),
    verdicts: all.flatMap((s) => s.verdicts),
  };
}
