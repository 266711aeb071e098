/**
 * The native adapter's inode table (src/fuse3/inodes.ts): examples, then a fast-check model
 * test of lookup / forget / open / release / rename / unlink against a plain model (a map of
 * live inodes with their path, lookup count and handles), checking after every step that each
 * path has one inode and each inode at most one path, that numbers are never reused, and that
 * an inode is dropped exactly when the kernel and every handle let go of it.
 */
import test from 'ava';
import fc from 'fast-check';
import { childPath, InodeTable, ROOT_INO } from '../../src/fuse3/inodes.js';

test('the root is inode 1 at "/" and is never forgotten', (t) => {
  const tab = new InodeTable();
  t.is(tab.pathOf(ROOT_INO), '/');
  tab.forget(ROOT_INO, 100);
  tab.unlink('/');
  tab.rename('/', '/x');
  t.is(tab.pathOf(ROOT_INO), '/');
  t.is(childPath('/', 'a'), '/a');
  t.is(childPath('/a', 'b'), '/a/b');
});

test('lookup counts; forget drops at zero unless a handle is open', (t) => {
  const tab = new InodeTable();
  const a = tab.lookup('/a');
  t.is(tab.lookup('/a').ino, a.ino, 'one inode per path');
  tab.addHandle(a.ino, 7);
  tab.forget(a.ino, 2);
  t.is(tab.pathOf(a.ino), '/a', 'kept while open');
  t.true(tab.removeHandle(a.ino, 7), 'the last handle');
  t.is(tab.get(a.ino), undefined, 'dropped once released');
  t.not(tab.lookup('/a').ino, a.ino, 'numbers are never reused');
});

test('a folder rename moves every inode below it; the target path loses its inode', (t) => {
  const tab = new InodeTable();
  const d = tab.lookup('/d');
  const f = tab.lookup('/d/f');
  const g = tab.lookup('/d/e/g');
  const old = tab.lookup('/z');
  const other = tab.lookup('/dd');
  tab.rename('/d', '/z');
  t.is(tab.pathOf(d.ino), '/z');
  t.is(tab.pathOf(f.ino), '/z/f');
  t.is(tab.pathOf(g.ino), '/z/e/g');
  t.is(tab.pathOf(old.ino), undefined, 'the replaced inode keeps only its number');
  t.is(tab.pathOf(other.ino), '/dd', 'a sibling with the same prefix does not move');
  t.is(tab.peek('/d/f'), undefined);
});

test('an entry of the other kind (a folder where a file was) gets a new inode; the old one keeps only its number', (t) => {
  const tab = new InodeTable();
  const f = tab.lookup('/x', false);
  t.is(tab.lookup('/x', false).ino, f.ino, 'the same kind: the same inode');
  t.is(tab.lookup('/x').ino, f.ino, 'kind not given: the same inode');
  const d = tab.lookup('/x', true);
  t.not(d.ino, f.ino);
  t.true(d.dir);
  t.is(tab.pathOf(f.ino), undefined, 'the file inode lost its path (the kernel still holds it)');
  t.is(tab.get(f.ino)?.nlookup, 3);
  tab.forget(f.ino, 3);
  t.is(tab.get(f.ino), undefined, 'dropped once the kernel forgets it');
  t.is(tab.lookup('/', true).ino, ROOT_INO, 'the root is never replaced');
  t.is(tab.lookup('/', false).ino, ROOT_INO);
});

interface ModelInode {
  path: string | undefined;
  nlookup: number;
  handles: Set<number>;
}

type Cmd =
  | { k: 'lookup'; p: string }
  | { k: 'forget'; pick: number; n: number }
  | { k: 'open'; pick: number }
  | { k: 'release'; pick: number }
  | { k: 'rename'; from: string; to: string }
  | { k: 'unlink'; p: string };

const NAMES = ['/a', '/b', '/a/x', '/a/y', '/b/x', '/c', '/a/x/q'];
const name = fc.constantFrom(...NAMES);
const cmd: fc.Arbitrary<Cmd> = fc.oneof(
  fc.record({ k: fc.constant('lookup' as const), p: name }),
  fc.record({ k: fc.constant('forget' as const), pick: fc.nat(20), n: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ k: fc.constant('open' as const), pick: fc.nat(20) }),
  fc.record({ k: fc.constant('release' as const), pick: fc.nat(20) }),
  fc.record({ k: fc.constant('rename' as const), from: name, to: name }),
  fc.record({ k: fc.constant('unlink' as const), p: name }),
);

test('model: lookup, forget, open, release, rename and unlink keep the table consistent', (t) => {
  fc.assert(
    fc.property(fc.array(cmd, { maxLength: 60 }), (cmds) => {
      const tab = new InodeTable();
      const model = new Map<number, ModelInode>([[ROOT_INO, { path: '/', nlookup: 1, handles: new Set() }]]);
      const seen = new Set<number>([ROOT_INO]);
      let nextFh = 1;
      const live = (): number[] => [...model.keys()].filter((i) => i !== ROOT_INO);
      const pick = (n: number): number | undefined => live()[n % Math.max(1, live().length)];
      const dropIfUnused = (ino: number): void => {
        const m = model.get(ino)!;
        if (ino !== ROOT_INO && m.nlookup === 0 && m.handles.size === 0) model.delete(ino);
      };
      const at = (p: string): number | undefined => [...model].find(([, m]) => m.path === p)?.[0];
      for (const c of cmds) {
        switch (c.k) {
          case 'lookup': {
            const known = at(c.p);
            const n = tab.lookup(c.p);
            if (known !== undefined) {
              if (n.ino !== known) return false;
              model.get(known)!.nlookup++;
            } else {
              if (seen.has(n.ino)) return false; // a reused number
              seen.add(n.ino);
              model.set(n.ino, { path: c.p, nlookup: 1, handles: new Set() });
            }
            break;
          }
          case 'forget': {
            const ino = pick(c.pick);
            if (ino === undefined) break;
            tab.forget(ino, c.n);
            const m = model.get(ino)!;
            m.nlookup = Math.max(0, m.nlookup - c.n);
            dropIfUnused(ino);
            break;
          }
          case 'open': {
            const ino = pick(c.pick);
            if (ino === undefined) break;
            const fh = nextFh++;
            tab.addHandle(ino, fh);
            model.get(ino)!.handles.add(fh);
            break;
          }
          case 'release': {
            const ino = pick(c.pick);
            const fh = ino === undefined ? undefined : [...model.get(ino)!.handles][0];
            if (ino === undefined || fh === undefined) break;
            const last = tab.removeHandle(ino, fh);
            const m = model.get(ino)!;
            m.handles.delete(fh);
            if (last !== (m.handles.size === 0)) return false;
            dropIfUnused(ino);
            break;
          }
          case 'rename': {
            // The VFS refuses a move into itself before the table hears of it.
            if (c.from === c.to || c.to.startsWith(c.from + '/') || c.from.startsWith(c.to + '/')) break;
            tab.rename(c.from, c.to);
            const moving = [...model].filter(([, m]) => m.path === c.from || m.path?.startsWith(c.from + '/'));
            const targets = new Set(moving.map(([, m]) => c.to + m.path!.slice(c.from.length)));
            for (const [ino, m] of model) {
              if (moving.some(([i]) => i === ino)) continue;
              if (m.path !== undefined && (targets.has(m.path) || m.path === c.to)) {
                m.path = undefined;
                dropIfUnused(ino);
              }
            }
            for (const [, m] of moving) m.path = c.to + m.path!.slice(c.from.length);
            break;
          }
          case 'unlink': {
            tab.unlink(c.p);
            const ino = at(c.p);
            if (ino !== undefined) {
              model.get(ino)!.path = undefined;
              dropIfUnused(ino);
            }
            break;
          }
        }
        // After every step: the same inodes, paths, counts and handles; one inode per path.
        if (tab.size !== model.size) return false;
        const paths = new Set<string>();
        for (const [ino, m] of model) {
          const n = tab.get(ino);
          if (!n || n.path !== m.path || n.nlookup !== m.nlookup || n.handles.size !== m.handles.size) return false;
          if (m.path !== undefined) {
            if (paths.has(m.path) || tab.peek(m.path)?.ino !== ino) return false;
            paths.add(m.path);
          }
        }
      }
      return true;
    }),
    { numRuns: 500 },
  );
  t.pass();
});

test('aliases: the other cases of a path, with their folder inode and name, for the adapter to invalidate', (t) => {
  const tab = new InodeTable();
  const a = tab.lookup('/a');
  const A = tab.lookup('/A');
  tab.lookup('/a/f');
  tab.lookup('/a/F');
  tab.lookup('/A/f');
  tab.lookup('/a/g');
  const got = (p: string, except?: string[]): string[] => tab.aliases(p, except).map((x) => `${x.parent}:${x.name}:${x.path}`).sort();
  t.deepEqual(got('/a/f'), [`${a.ino}:F:/a/F`, `${A.ino}:f:/A/f`].sort());
  t.deepEqual(got('/a/f', ['/a/f', '/a/F']), [`${A.ino}:f:/A/f`]);
  t.deepEqual(got('/a/g'), []);
  tab.unlink('/A/f');
  t.deepEqual(got('/a/f'), [`${a.ino}:F:/a/F`], 'an unlinked path is no alias');
  tab.rename('/a', '/b');
  t.deepEqual(got('/b/f'), [`${a.ino}:F:/b/F`], 'the moved ones are under their new paths, their folder moved with them');
  t.deepEqual(got('/a/f'), [], 'nothing left under the old ones');
});
