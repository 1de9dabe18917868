// Issue 17's done-means: algorithms are named only in the registry (shared/algorithms). A string
// literal that is a registered algorithm's name, used AS an algorithm (the value of an `algorithm`
// or `matchedBy` property, or compared with one), may appear in server/ and shared/ only in the
// files listed below, each with its count, and each with the reason it still does. Column names of
// the media table ('sha256', 'pdq'…) and crypto calls (createHash('sha256')) are data, not algorithm
// choices, and are not counted. Fixing a deviation means lowering its count here.
import { readdirSync, readFileSync } from 'node:fs';
import { join, posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';
import { ALGORITHM_REGISTRY } from '../../shared/algorithms/index.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const NAMES = new Set(ALGORITHM_REGISTRY.names);
const ALGORITHM_PROPERTIES = new Set(['algorithm', 'matchedBy']);

/**
 * Where algorithms are still named, and why. The media table's columns map to subjects in the
 * registry (imageSubjects, videoSubjects); SHA-256 as the media key is MEDIA_KEY_ALGORITHM.
 */
const KNOWN: Record<string, number> = {};

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

/** The property a literal is the value of, through `as` and `satisfies`: `{ algorithm: 'pdq' as const }`. */
function unwrap(node: ts.Node): ts.Node {
  let n = node;
  while (ts.isAsExpression(n.parent) || ts.isSatisfiesExpression(n.parent) || ts.isParenthesizedExpression(n.parent)) n = n.parent;
  return n;
}

function endsInAlgorithmProperty(expr: ts.Expression): boolean {
  return (ts.isPropertyAccessExpression(expr) || ts.isPropertyAccessChain(expr)) && ALGORITHM_PROPERTIES.has(expr.name.text);
}

/** Each literal used as an algorithm name: `file:line text`. */
function algorithmNamesIn(file: string, text = readFileSync(join(ROOT, file), 'utf8')): string[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: string[] = [];
  const visit = (node: ts.Node) => {
    if ((ts.isStringLiteral(node) || ts.isNoSubstitutionTemplateLiteral(node)) && NAMES.has(node.text)) {
      const outer = unwrap(node);
      const parent = outer.parent;
      const asProperty = ts.isPropertyAssignment(parent) && parent.initializer === outer && ALGORITHM_PROPERTIES.has(parent.name.getText(source));
      const compared =
        ts.isBinaryExpression(parent) &&
        [ts.SyntaxKind.EqualsEqualsEqualsToken, ts.SyntaxKind.ExclamationEqualsEqualsToken].includes(parent.operatorToken.kind) &&
        endsInAlgorithmProperty(parent.left === outer ? parent.right : parent.left);
      if (asProperty || compared) found.push(`${file}:${source.getLineAndCharacterOfPosition(node.getStart(source)).line + 1} ${parent.getText(source)}`);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('algorithm names outside the registry', () => {
  const files = [...sourceFiles('server'), ...sourceFiles('shared')].filter((f) => !f.startsWith('shared/algorithms/'));
  const uses = new Map(files.map((f) => [f, algorithmNamesIn(f)]));

  it('appear only where listed, as often as listed', () => {
    const unexpected = [...uses].filter(([file, found]) => found.length > 0 && !(file in KNOWN)).flatMap(([, found]) => found);
    expect(unexpected, 'read the algorithm from the registry (shared/algorithms) instead').toEqual([]);
    const counts = Object.fromEntries(Object.keys(KNOWN).map((file) => [file, uses.get(file)?.length ?? 0]));
    expect(counts, 'a listed file names algorithms more or less often than listed: update KNOWN').toEqual(KNOWN);
  });

  it('finds a use it must refuse (the check itself works)', () => {
    // The check would pass with an empty scan; this pins what it sees, and what it leaves alone.
    const uses = algorithmNamesIn(
      'example.ts',
      `const a = s.algorithm === 'pdq'; const b = { algorithm: 'md5' as const }; if ('vpdq' !== m.matchedBy) {}\nconst column = row.sha256; createHash('sha256');`,
    );
    expect(uses).toEqual(["example.ts:1 s.algorithm === 'pdq'", "example.ts:1 algorithm: 'md5' as const", "example.ts:1 'vpdq' !== m.matchedBy"]);
  });
});
