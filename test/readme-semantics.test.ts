/**
 * The README's Semantics table is checked: every row names the tests that check it, in its
 * last column, as `FILE` › title (FILE under test/, several joined with <br>), and each named
 * test exists: FILE is there and registers a test with exactly that title. A row without a
 * test, or naming one that was renamed or removed, fails here.
 */
import test from 'ava';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

// dist/test/readme-semantics.test.js → the repository root (the .ts sources are read there).
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface Row {
  call: string;
  tests: { file: string; title: string }[];
  /** What could not be read as a test reference. */
  bad: string[];
}

/** The rows of the table under `## Semantics`. */
export function semanticsRows(readme: string): Row[] {
  const section = readme.split(/^## /m).find((s) => s.startsWith('Semantics\n'));
  if (!section) throw new Error('README.md has no "## Semantics" section');
  const lines = section.split('\n').filter((l) => l.startsWith('|'));
  const header = cells(lines[0] ?? '');
  if (header.at(-1) !== 'checked by') throw new Error(`the Semantics table's last column must be "checked by", not "${header.at(-1)}"`);
  return lines.slice(2).map((l) => {
    const c = cells(l);
    const row: Row = { call: c[0] ?? '', tests: [], bad: [] };
    const refs = (c.length === header.length ? (c.at(-1) ?? '') : '').split('<br>').map((s) => s.trim()).filter(Boolean);
    for (const ref of refs) {
      const m = /^`([^`]+\.test\.ts)` › (.+)$/.exec(ref);
      if (m) row.tests.push({ file: m[1]!, title: m[2]! });
      else row.bad.push(ref);
    }
    return row;
  });
}

/** A table line's cells (no `|` inside a cell: none of the table's text has one). */
function cells(line: string): string[] {
  return line.trim().replace(/^\|/, '').replace(/\|$/, '').split('|').map((s) => s.trim());
}

/** Titles of the tests a test file registers: the first string argument of test(…), test.serial(…), e2eTest(…) and the like. */
export function testTitles(source: string): Set<string> {
  const titles = new Set<string>();
  const re = /\b(?:test(?:\.(?:serial|skip|only|failing))?|e2eTest|e2e\w*Test)\(\s*(['"`])((?:\\.|(?!\1)[^\\])*)\1/g;
  for (const m of source.matchAll(re)) titles.add(m[2]!.replace(/\\(.)/g, '$1'));
  return titles;
}

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const rows = semanticsRows(readme);

test('the Semantics table has rows', (t) => {
  t.true(rows.length >= 10, `${rows.length} rows`);
});

test('every row of the Semantics table names at least one test, and nothing else, in its "checked by" column', (t) => {
  for (const r of rows) {
    t.true(r.tests.length > 0, `the row for ${r.call} names no test`);
    t.deepEqual(r.bad, [], `the row for ${r.call} has something that is not a test reference (\`FILE\` › title)`);
  }
});

test('every test the Semantics table names exists: its file under test/, and a test with exactly that title in it', (t) => {
  const sources = new Map<string, Set<string> | undefined>();
  for (const r of rows) {
    for (const { file, title } of r.tests) {
      if (!sources.has(file)) {
        const p = path.join(ROOT, 'test', file);
        sources.set(file, existsSync(p) ? testTitles(readFileSync(p, 'utf8')) : undefined);
      }
      const titles = sources.get(file);
      t.truthy(titles, `${r.call}: test/${file} does not exist`);
      t.true(titles?.has(title) ?? false, `${r.call}: test/${file} has no test titled "${title}"`);
    }
  }
});

test('the check itself: a row without a test, a malformed reference and a missing title are caught', (t) => {
  const table = (last: string): string =>
    ['## Semantics', '', '| call | what | errno | checked by |', '|---|---|---|---|', `| \`x\` | does | \`E\` | ${last} |`, '', '## Next'].join('\n');
  t.deepEqual(semanticsRows(table('')).map((r) => r.tests.length), [0]);
  t.deepEqual(semanticsRows(table('see the tests')).map((r) => r.bad), [['see the tests']]);
  t.deepEqual(semanticsRows(table('`a.test.ts` › one<br>`b/c.test.ts` › two: three')).map((r) => r.tests), [
    [{ file: 'a.test.ts', title: 'one' }, { file: 'b/c.test.ts', title: 'two: three' }],
  ]);
  t.throws(() => semanticsRows('## Semantics\n\n| call | what |\n|---|---|\n| x | y |\n'), { message: /checked by/ });
  const titles = testTitles("test('plain', …); e2eTest('with \\'quotes\\' in it', …); test.serial(\"double\", …); notatest('no', …)");
  t.deepEqual([...titles].sort(), ["double", "plain", "with 'quotes' in it"]);
});
