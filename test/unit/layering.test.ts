// Keeps the layering in docs/architecture.md true: the layers are read from the document itself,
// every source file must belong to one of them, and every relative import must point to the same
// layer or below, except the deviations the document lists (kept here, and checked to still exist,
// so that fixing one means updating the document).
import { readdirSync, readFileSync } from 'node:fs';
import { join, normalize, posix, relative, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const DOC = readFileSync(join(ROOT, 'docs/architecture.md'), 'utf8');

/** Known deviations (docs/architecture.md, "Known deviations today"): importer → imported module, type-only. */
const KNOWN_DEVIATIONS = new Set<string>([]);

/**
 * Rank of each module named in the document's numbered layer list: each item is a layer, and
 * within an item ", then" starts a higher sub-layer. Modules of one rank may import each other.
 */
function layersFromDoc(doc: string): Map<string, number> {
  const start = doc.indexOf('Imports point down these layers');
  if (start < 0) throw new Error('docs/architecture.md has no "Imports point down these layers" list');
  const ranks = new Map<string, number>();
  let rank = 0;
  let listStarted = false;
  for (const line of doc.slice(start).split('\n').slice(1)) {
    if (/^\d+\. /.test(line)) listStarted = true;
    else if (listStarted) break;
    else continue;
    for (const segment of line.split(/,?\s+then\s+/)) {
      rank++;
      for (const [, name] of segment.matchAll(/`([^`]+)`/g)) ranks.set(name, rank);
    }
  }
  if (ranks.size === 0) throw new Error('the layer list in docs/architecture.md is empty');
  return ranks;
}

/** The layer module a repository file belongs to: `shared/*`, `server/<folder>` or `server/<file>.ts`. */
function moduleOf(file: string): string {
  const parts = file.split('/');
  if (parts[0] === 'shared') return 'shared/*';
  return parts.length === 2 ? file : `server/${parts[1]}`;
}

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const path = posix.join(dir, entry.name);
    if (entry.isDirectory()) return sourceFiles(path);
    return entry.name.endsWith('.ts') ? [path] : [];
  });
}

interface Import {
  /** Repository path of the imported file, `.js` specifiers mapped back to `.ts`. */
  target: string;
  typeOnly: boolean;
}

/** Every relative import and export-from of a file, static and dynamic. */
function importsOf(file: string): Import[] {
  const text = readFileSync(join(ROOT, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, false, ts.ScriptKind.TS);
  const found: Import[] = [];
  const add = (specifier: ts.Expression | undefined, typeOnly: boolean) => {
    if (!specifier || !ts.isStringLiteral(specifier) || !specifier.text.startsWith('.')) return;
    const target = relative(ROOT, normalize(join(ROOT, posix.dirname(file), specifier.text))).split(sep).join('/');
    found.push({ target: target.replace(/\.js$/, '.ts'), typeOnly });
  };
  const visit = (node: ts.Node) => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly ||
          (clause.name === undefined &&
            clause.namedBindings !== undefined &&
            ts.isNamedImports(clause.namedBindings) &&
            clause.namedBindings.elements.length > 0 &&
            clause.namedBindings.elements.every((element) => element.isTypeOnly)));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      add(node.moduleSpecifier, node.isTypeOnly);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

describe('module layering (docs/architecture.md)', () => {
  const ranks = layersFromDoc(DOC);
  const files = [...sourceFiles('server'), ...sourceFiles('shared')];

  it('reads the layer list from the document', () => {
    expect(ranks.get('shared/*')).toBe(1);
    expect(ranks.get('server/cli')).toBe(Math.max(...ranks.values()));
    expect(ranks.get('server/trust')).toBeLessThan(ranks.get('server/verdicts')!);
  });

  it('places every source file in a layer and names every folder in the module table', () => {
    const unplaced = [...new Set(files.map(moduleOf))].filter((module) => !ranks.has(module));
    expect(unplaced, 'add these to the layer list in docs/architecture.md').toEqual([]);
    const folders = new Set(files.filter((f) => f.split('/').length > 2).map((f) => f.split('/').slice(0, 2).join('/')));
    const unnamed = [...folders].filter((folder) => !DOC.includes(`| \`${folder}\` |`));
    expect(unnamed, 'add these to the module table in docs/architecture.md').toEqual([]);
  });

  it('has every import point to the same layer or below, but for the known deviations', () => {
    const upward: string[] = [];
    const deviationsSeen = new Set<string>();
    for (const file of files) {
      for (const { target, typeOnly } of importsOf(file)) {
        const from = moduleOf(file);
        const to = moduleOf(target);
        if (from === to || ranks.get(to)! <= ranks.get(from)!) continue;
        const edge = `${file} -> ${to}`;
        if (KNOWN_DEVIATIONS.has(edge) && typeOnly) deviationsSeen.add(edge);
        else upward.push(`${edge}${typeOnly ? ' (type only)' : ''}`);
      }
    }
    expect(upward, 'imports up the layers: pass a function in from server/main.ts instead').toEqual([]);
    const fixed = [...KNOWN_DEVIATIONS].filter((edge) => !deviationsSeen.has(edge));
    expect(fixed, 'no longer deviations: drop them here and in docs/architecture.md').toEqual([]);
  });
});
