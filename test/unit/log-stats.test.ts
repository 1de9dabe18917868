// The log statistics on crafted entry sets, with exact expected numbers: issued, updated,
// retracted and superseded counts, time to retraction (median, p90), per-month bucketing,
// withheld and hostile entries; the CSV files (formula injection neutralised) and the charts
// (well-formed XML, checked by libxml2 through sharp, with every series drawn).
import canonicalize from 'canonicalize';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { activityEntry } from '../../server/log/entry.js';
import { describeEntry, instant, logStatistics, mergeStatistics, quantile, type LoggedEntry } from '../../server/log/stats.js';
import { csvText, instancesCsv, monthlyCsv, summaryCsv, verdictsCsv, type InstanceStatistics } from '../../server/log/stats-csv.js';
import { MAX_MONTHS, retractionBin, statisticsCharts, xmlText } from '../../server/log/stats-charts.js';

const actor = 'https://a.example/actor';
const vid = (n: string) => `https://a.example/verdicts/${n}`;

function described(activity: Record<string, unknown>, version: 1 | 2 = 2): LoggedEntry {
  return { kind: 'described', version, activity };
}
function create(n: string, label: unknown, method: unknown, published: unknown, extra: Record<string, unknown> = {}): LoggedEntry {
  return described({ type: 'Create', id: `${vid(n)}#create`, actor, object: { type: 'Verdict', id: vid(n), label, method, published, ...extra } });
}
function update(n: string, label: string, updated: string): LoggedEntry {
  return described({ type: 'Update', id: `${vid(n)}#update`, actor, object: { type: 'Verdict', id: vid(n), label, method: 'human', updated } });
}
function del(n: string, deleted: unknown): LoggedEntry {
  return described({ type: 'Delete', id: `${vid(n)}#delete`, actor, object: { type: 'Tombstone', id: vid(n), formerType: 'Verdict', deleted } });
}
const classifier = { classifier: { name: 'nsfw', version: '1' } };

/** The crafted log (index: what it is). */
const LOG: LoggedEntry[] = [
  /* 0 */ create('a', 'csam', 'human', '2026-01-10T00:00:00Z'),
  /* 1 */ create('b', 'csam', 'classifier', '2026-01-20T00:00:00Z', classifier),
  /* 2 */ del('b', '2026-01-20T02:00:00Z'), // 7200 s
  /* 3 */ create('c', 'spam', 'human', '2026-02-01T00:00:00Z'),
  /* 4 */ create('d', 'spam', 'human', '2026-02-03T00:00:00Z', { supersedes: vid('c') }),
  /* 5 */ del('c', '2026-02-03T00:00:00Z'), // the superseded verdict's own Delete: nothing more
  /* 6 */ { kind: 'withheld' },
  /* 7 */ del('e', '2026-03-01T00:00:00Z'), // its Create was withheld
  /* 8 */ update('a', 'sexual', '2026-03-05T00:00:00Z'),
  /* 9 */ del('a', '2026-03-10T00:00:00Z'), // 59 days after 2026-01-10 = 5 097 600 s, under its new label
  /* 10 */ create('f', 'csam', 'classifier', '2026-01-20T00:00:00Z', classifier),
  /* 11 */ del('f', '2026-01-20T01:00:00Z'), // 3600 s
  /* 12 */ create('g', 'csam', 'classifier', '2026-01-21T00:00:00Z', classifier),
  /* 13 */ del('g', '2026-01-21T04:00:00Z'), // 14 400 s
  /* 14 */ create('h', '=cmd|calc', 'human', 'not a time'),
  /* 15 */ del('h', '2026-02-31T00:00:00Z'), // no such day: month unknown, no duration
  /* 16 */ del('h', '2026-04-01T00:00:00Z'), // a second Delete: repeated
  /* 17 */ { kind: 'unreadable' },
  /* 18 */ described({ type: 'Create', id: 'https://a.example/log/checkpoints/9#create', actor, object: { type: 'Checkpoint', id: 'https://a.example/log/checkpoints/9' } }, 1),
  /* 19 */ create('a', 'ok', 'human', '2026-05-01T00:00:00Z'), // a second Create of one id: repeated
];

describe('log statistics', () => {
  const stats = logStatistics(LOG);

  it('counts entries: versions, withheld, unreadable, not about a verdict, repeated', () => {
    expect(stats.entries).toEqual({ total: 20, version1: 1, version2: 17, withheld: 1, unreadable: 1, other: 1, repeated: 2 });
  });

  it('counts per label and method, each event under the label of its time, with the time to retraction', () => {
    const strip = stats.groups.map(({ retractionSeconds, ...g }) => ({ ...g, seconds: retractionSeconds }));
    expect(strip).toEqual([
      { label: '(withheld)', method: '(unknown)', issued: 0, updated: 0, retracted: 1, superseded: 0, retractionTimed: 0, retractionMedianSeconds: null, retractionP90Seconds: null, seconds: [] },
      { label: '=cmd|calc', method: 'human', issued: 1, updated: 0, retracted: 1, superseded: 0, retractionTimed: 0, retractionMedianSeconds: null, retractionP90Seconds: null, seconds: [] },
      // p90 of [3600, 7200, 14400]: h = 2 × 0.9 = 1.8, 7200 + 0.8 × 7200 = 12960.
      { label: 'csam', method: 'classifier', issued: 3, updated: 0, retracted: 3, superseded: 0, retractionTimed: 3, retractionMedianSeconds: 7200, retractionP90Seconds: 12960, seconds: [3600, 7200, 14400] },
      { label: 'csam', method: 'human', issued: 1, updated: 0, retracted: 0, superseded: 0, retractionTimed: 0, retractionMedianSeconds: null, retractionP90Seconds: null, seconds: [] },
      { label: 'sexual', method: 'human', issued: 0, updated: 1, retracted: 1, superseded: 0, retractionTimed: 1, retractionMedianSeconds: 5_097_600, retractionP90Seconds: 5_097_600, seconds: [5_097_600] },
      { label: 'spam', method: 'human', issued: 2, updated: 0, retracted: 0, superseded: 1, retractionTimed: 0, retractionMedianSeconds: null, retractionP90Seconds: null, seconds: [] },
    ]);
  });

  it('buckets events by the UTC month of their own time, unknown times last', () => {
    expect(stats.months).toEqual([
      { month: '2026-01', label: 'csam', method: 'classifier', issued: 3, updated: 0, retracted: 3, superseded: 0 },
      { month: '2026-01', label: 'csam', method: 'human', issued: 1, updated: 0, retracted: 0, superseded: 0 },
      { month: '2026-02', label: 'spam', method: 'human', issued: 2, updated: 0, retracted: 0, superseded: 1 },
      { month: '2026-03', label: '(withheld)', method: '(unknown)', issued: 0, updated: 0, retracted: 1, superseded: 0 },
      { month: '2026-03', label: 'sexual', method: 'human', issued: 0, updated: 1, retracted: 1, superseded: 0 },
      { month: '(unknown)', label: '=cmd|calc', method: 'human', issued: 1, updated: 0, retracted: 1, superseded: 0 },
    ]);
    // A month holds what happened in it: 2026-01-31T23:30-01:00 is February in UTC.
    const edge = logStatistics([create('x', 'spam', 'human', '2026-01-31T23:30:00-01:00')]);
    expect(edge.months.map((m) => m.month)).toEqual(['2026-02']);
  });

  it('lists every verdict once, with its outcome', () => {
    const byId = new Map(stats.verdicts.map((v) => [v.id.slice(-1), v]));
    expect([...byId.keys()]).toEqual(['a', 'b', 'c', 'd', 'e', 'f', 'g', 'h']);
    expect(byId.get('a')).toEqual({
      id: vid('a'),
      label: 'sexual',
      method: 'human',
      classifier: null,
      index: 0,
      issuedAt: '2026-01-10T00:00:00.000Z',
      outcome: 'retracted',
      endedAt: '2026-03-10T00:00:00.000Z',
      secondsToRetraction: 5_097_600,
      updates: 1,
    });
    expect(byId.get('b')).toMatchObject({ classifier: 'nsfw@1', outcome: 'retracted', secondsToRetraction: 7200 });
    expect(byId.get('c')).toMatchObject({ outcome: 'superseded', endedAt: '2026-02-03T00:00:00.000Z', secondsToRetraction: null });
    expect(byId.get('d')).toMatchObject({ outcome: 'live', endedAt: null });
    expect(byId.get('e')).toMatchObject({ label: '(withheld)', method: '(unknown)', index: null, issuedAt: null, outcome: 'retracted' });
    expect(byId.get('h')).toMatchObject({ issuedAt: null, endedAt: null, outcome: 'retracted', secondsToRetraction: null });
  });

  it('reads both entry versions from their bytes, and a withheld or broken entry as such', () => {
    const activity = { type: 'Create', id: `${vid('v')}#create`, actor, published: '2026-06-01T00:00:00Z', object: { type: 'Verdict', id: vid('v'), label: 'gore', method: 'human', published: '2026-06-01T00:00:00Z', subject: [{ algorithm: 'sha256', digest: '0'.repeat(64) }] } };
    const v2 = describeEntry(activityEntry(activity).entry);
    expect(v2).toMatchObject({ kind: 'described', version: 2, activity: { object: { label: 'gore', subjectCommitment: expect.any(String) } } });
    expect(JSON.stringify(v2)).not.toContain('0'.repeat(64)); // the public part carries no digest
    const v1 = describeEntry(new Uint8Array(Buffer.from(canonicalize(activity)!, 'utf8')));
    expect(v1).toMatchObject({ kind: 'described', version: 1, activity: { object: { label: 'gore' } } });
    expect(describeEntry(null)).toEqual({ kind: 'withheld' });
    expect(describeEntry(new Uint8Array([0xff, 0x00]))).toEqual({ kind: 'unreadable' });
    expect(describeEntry(new Uint8Array(Buffer.from('{"vouchLogEntry":2}')))).toEqual({ kind: 'unreadable' });
    expect(logStatistics([v2, v1]).groups.map((g) => [g.label, g.issued])).toEqual([['gore', 1]]);
  });

  it('survives hostile values: odd types, long and control-character labels, times out of range, huge counts', () => {
    const long = 'x'.repeat(10_000);
    const hostile = logStatistics([
      create('1', { not: 'a label' }, 42, '0000-01-01T00:00:00Z'),
      create('2', long, 'human', '+275760-09-13T00:00:00Z'),
      create('3', 'a\u0000b\u001b[31m', 'human', '2026-01-01T00:00:00Z', { supersedes: vid('3') }),
      described({ type: 'Delete', actor, object: 'not a url but an id' }),
      described({ type: 'Delete', actor, object: { id: 7 } }),
      described({ type: 'Update', actor, object: { type: 'Verdict', id: vid('4'), label: ['x'] } }),
      described({ type: 'Create', actor, object: null }),
      described({ type: 'Create', actor, object: { type: 'Verdict', id: 'y'.repeat(5000) } }),
    ]);
    expect(hostile.entries).toMatchObject({ total: 8, other: 3, repeated: 0 });
    expect(hostile.groups.map((g) => [g.label, g.method, g.issued, g.updated, g.retracted])).toEqual([
      ['(invalid)', '(invalid)', 1, 0, 0],
      ['(invalid)', '(unknown)', 0, 1, 0],
      ['(withheld)', '(unknown)', 0, 0, 1],
      ['a\u0000b\u001b[31m', 'human', 1, 0, 0],
      [`${'x'.repeat(63)}…`, 'human', 1, 0, 0],
    ]);
    expect(hostile.months.filter((m) => m.month === '(unknown)').map((m) => m.issued)).toEqual([1, 0, 0, 1]);
    // A cut never splits a surrogate pair (63 units of 'y', then an emoji across the cut).
    const emoji = logStatistics([create('5', `${'y'.repeat(62)}\u{1F600}tail`, 'human', '2026-01-01T00:00:00Z')]);
    expect(emoji.groups[0].label).toBe(`${'y'.repeat(62)}…`);
    expect(instant('2026-02-29T00:00:00Z')).toBeNull();
    expect(instant('2028-02-29T00:00:00Z')).toBe(Date.UTC(2028, 1, 29));
    expect(instant('March 7, 2026')).toBeNull();
    expect(instant('9999-12-31T23:59:59+00:00')).toBe(Date.UTC(9999, 11, 31, 23, 59, 59));
    expect(instant('1969-12-31T23:59:59Z')).toBeNull();
    // Counts beyond 2^32 add up exactly (merging is plain addition).
    const big = { ...stats, groups: stats.groups.map((g) => ({ ...g, issued: 2 ** 40 })) };
    expect(mergeStatistics([big, big]).groups[0].issued).toBe(2 ** 41);
  });

  it('interpolates quantiles as R type 7 / numpy do', () => {
    expect(quantile([], 0.5)).toBeNull();
    expect(quantile([5], 0.9)).toBe(5);
    expect(quantile([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(quantile([10, 20, 30, 40, 50, 60, 70, 80, 90, 100], 0.9)).toBe(91);
  });

  it('adds up several instances, durations pooled before the quantiles', () => {
    const one = logStatistics([create('p', 'spam', 'human', '2026-01-01T00:00:00Z'), del('p', '2026-01-01T00:01:40Z')]); // 100 s
    const two = logStatistics([create('q', 'spam', 'human', '2026-01-01T00:00:00Z'), del('q', '2026-01-01T00:05:00Z')]); // 300 s
    const merged = mergeStatistics([one, two, stats]);
    const spam = merged.groups.find((g) => g.label === 'spam')!;
    expect(spam).toMatchObject({ issued: 4, retracted: 2, superseded: 1, retractionTimed: 2, retractionMedianSeconds: 200, retractionP90Seconds: 280 });
    expect(merged.entries.total).toBe(24);
    expect(merged.verdicts).toHaveLength(10);
    expect(merged.months.find((m) => m.month === '2026-01' && m.label === 'spam')).toMatchObject({ issued: 2, retracted: 2 });
  });
});

describe('log statistics as CSV', () => {
  const instances: InstanceStatistics[] = [{ instance: 'https://a.example', origin: 'a.example/vouch-log', checkpointSize: 20, auditOk: true, stats: logStatistics(LOG) }];
  const text = (lines: Iterable<string>) => [...lines].join('');

  it('neutralises formula cells and quotes what RFC 4180 asks', () => {
    expect(csvText('=cmd|calc')).toBe("'=cmd|calc");
    expect(csvText('+1')).toBe("'+1");
    expect(csvText('-1')).toBe("'-1");
    expect(csvText('@SUM(A1)')).toBe("'@SUM(A1)");
    expect(csvText('\tx')).toBe("'\tx");
    expect(csvText('a,"b"\nc')).toBe('"a,""b""\nc"');
    expect(csvText('=a,b')).toBe('"\'=a,b"');
    expect(csvText('csam')).toBe('csam');
  });

  it('writes one row per verdict, per label and method, per month, per instance', () => {
    const verdicts = text(verdictsCsv(instances)).split('\r\n');
    expect(verdicts[0]).toBe('instance,verdict_id,label,method,classifier,log_index,issued_at,issue_month,outcome,ended_at,seconds_to_retraction,updates');
    expect(verdicts[1]).toBe(`https://a.example,${vid('a')},sexual,human,,0,2026-01-10T00:00:00.000Z,2026-01,retracted,2026-03-10T00:00:00.000Z,5097600,1`);
    expect(verdicts).toContain(`https://a.example,${vid('h')},'=cmd|calc,human,,14,,,retracted,,,0`);
    expect(verdicts).toHaveLength(1 + 8 + 1); // header, 8 verdicts, the empty string after the last CRLF

    const summary = text(summaryCsv(instances)).split('\r\n');
    expect(summary[0]).toBe('instance,label,method,issued,updated,retracted,superseded,share_of_label_issued,retractions_timed,retraction_median_seconds,retraction_p90_seconds');
    expect(summary).toContain('https://a.example,csam,classifier,3,0,3,0,0.75,3,7200,12960');
    expect(summary).toContain('https://a.example,csam,human,1,0,0,0,0.25,0,,');
    expect(summary).toContain("https://a.example,'=cmd|calc,human,1,0,1,0,1,0,,");
    expect(summary).toContain('https://a.example,(withheld),(unknown),0,0,1,0,,0,,');

    expect(text(monthlyCsv(instances)).split('\r\n')).toContain('https://a.example,2026-02,spam,human,2,0,0,1');
    expect(text(instancesCsv(instances))).toBe(
      'instance,log_origin,checkpoint_size,audit_ok,entries,version1,version2,withheld,unreadable,other,repeated\r\nhttps://a.example,a.example/vouch-log,20,true,20,1,17,1,1,1,2\r\n',
    );
  });
});

describe('log statistics as charts', () => {
  const parses = async (svg: string) => {
    // libxml2 (inside librsvg) refuses anything that is not well-formed XML.
    const png = await sharp(Buffer.from(`<?xml version="1.0" encoding="UTF-8"?>\n${svg}`)).png().toBuffer();
    expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  };

  it('draws issued per month by label, retraction times and method shares, every series named', async () => {
    const charts = statisticsCharts(logStatistics(LOG), 'a.example/vouch-log, 20 entries');
    expect(charts.map((c) => c.name)).toEqual(['issued-per-month', 'retraction-time', 'method-share-per-month']);
    for (const chart of charts) await parses(chart.svg);
    const [issued, retraction, share] = charts.map((c) => c.svg);
    // Months from the first to the last with an issue, then the unknown ones.
    for (const month of ['2026-01', '2026-02', '(unknown)']) expect(issued).toContain(`>${month}</text>`);
    expect(issued).toContain('<title>2026-01: csam 4</title>');
    expect(issued).toContain('<title>2026-02: spam 2</title>');
    expect(issued).toContain('>=cmd|calc</text>'); // a formula is only text in a drawing
    expect(issued).toContain('verdicts issued');
    expect(retraction).toContain('<title>1–6 h: csam 3</title>');
    expect(retraction).toContain('<title>30–365 days: sexual 1</title>');
    expect(share).toContain('<title>2026-01: classifier 3 of 4 (75.0 %)</title>');
    expect(share).toContain('<title>2026-01: human 1 of 4 (25.0 %)</title>');
    // A label keeps its colour from chart to chart.
    const fillOf = (svg: string, title: string) => new RegExp(`fill="(#[0-9A-F]{6})"[^>]*><title>${title}`).exec(svg)?.[1];
    expect(fillOf(issued, '2026-01: csam')).toBe('#0072B2');
    expect(fillOf(retraction, '1–6 h: csam')).toBe('#0072B2');
    expect(fillOf(retraction, '30–365 days: sexual')).toBe('#D55E00'); // fourth by events: csam 7, spam 3, =cmd|calc 2, sexual 2
  });

  it('escapes hostile labels, folds many labels into "other", and draws at most the latest months', async () => {
    const entries: LoggedEntry[] = [
      create('evil', '</text><script>alert(1)</script>\u0001&', 'human', '2026-05-01T00:00:00Z'),
      create('old', 'spam', 'human', '1970-01-01T00:00:00Z'),
    ];
    for (let i = 0; i < 20; i++) entries.push(create(`l${i}`, `label-${i}`, 'human', '2026-06-01T00:00:00Z'));
    const charts = statisticsCharts(logStatistics(entries), 'x & <y>');
    for (const chart of charts) await parses(chart.svg);
    const issued = charts[0].svg;
    expect(issued).not.toContain('<script>');
    expect(issued).toContain('&lt;/text&gt;&lt;script&gt;');
    expect(issued).toContain('x &amp; &lt;y&gt;');
    expect(issued).toContain('other labels (15)');
    expect(issued).toContain(`the latest ${MAX_MONTHS} months`);
    expect(issued).not.toContain('>1970-01</text>');
    expect(issued).toContain('>2026-06</text>');
    expect(xmlText('a\uD800b\uFFFF"\'')).toBe('a\uFFFDb\uFFFD&quot;&#39;');
  });

  it('puts each retraction time in its bin', () => {
    expect([0, 59.9, 60, 3599, 3600, 86_399, 86_400, 365 * 86_400, 1e12].map(retractionBin)).toEqual([0, 0, 1, 2, 3, 4, 5, 8, 8]);
  });

  it('draws an empty log without failing', async () => {
    const charts = statisticsCharts(logStatistics([]), 'nothing');
    for (const chart of charts) {
      await parses(chart.svg);
      expect(chart.svg).toContain('nothing to show');
    }
  });
});
