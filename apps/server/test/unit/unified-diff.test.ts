/**
 * The policy history's diffs: applying one to the old text gives the new text exactly (random
 * edits, texts with and without a final newline), hunks read like diff -u, and an edit too large
 * to search still round-trips.
 */
import { describe, expect, it } from 'vitest';
import { diffLines, unifiedDiff } from '../../src/state/unified-diff.js';

/** A strict patch applier: every context and removed line must match, or it throws. */
function apply(oldText: string, diff: string): string {
  if (diff === '') return oldText;
  const old = oldText === '' ? [] : oldText.split('\n');
  const oldNl = oldText === '' || oldText.endsWith('\n');
  if (oldNl && old.length) old.pop();
  const rows = diff.split('\n');
  if (rows.at(-1) === '') rows.pop();
  expect(rows[0]!.startsWith('--- ')).toBe(true);
  expect(rows[1]!.startsWith('+++ ')).toBe(true);
  const out: string[] = [];
  let at = 0;
  let newNl = true;
  let lastKind = '';
  for (let r = 2; r < rows.length; r++) {
    const row = rows[r]!;
    const h = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@$/.exec(row);
    if (h) {
      const start = Number(h[1]) - (h[2] === '0' ? 0 : 1);
      if (start < at) throw new Error(`hunk goes back: ${row}`);
      out.push(...old.slice(at, start));
      at = start;
      continue;
    }
    if (row === '\\ No newline at end of file') {
      if (lastKind !== '-') newNl = false;
      continue;
    }
    const kind = row[0]!;
    const line = row.slice(1);
    lastKind = kind;
    if (kind === ' ' || kind === '-') {
      if (old[at] !== line) throw new Error(`line ${at + 1} is ${JSON.stringify(old[at])}, the diff says ${JSON.stringify(line)}`);
      at++;
    }
    if (kind === ' ' || kind === '+') out.push(line);
  }
  out.push(...old.slice(at));
  if (at < old.length) newNl = oldNl;
  return out.length ? out.join('\n') + (newNl ? '\n' : '') : '';
}

function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('unifiedDiff', () => {
  it('reads like diff -u: headers, 3 lines of context, hunk ranges', () => {
    const a = ['{', '  "acls": [', '    {"action": "accept", "src": ["*"], "dst": ["*:*"]},', '  ],', '}', ''].join('\n');
    const b = ['{', '  "acls": [', '    {"action": "accept", "src": ["group:ops"], "dst": ["*:22"]},', '  ],', '}', ''].join('\n');
    expect(unifiedDiff(a, b, 'policy v1', 'policy v2')).toBe([
      '--- policy v1',
      '+++ policy v2',
      '@@ -1,5 +1,5 @@',
      ' {',
      '   "acls": [',
      '-    {"action": "accept", "src": ["*"], "dst": ["*:*"]},',
      '+    {"action": "accept", "src": ["group:ops"], "dst": ["*:22"]},',
      '   ],',
      ' }',
      '',
    ].join('\n'));
    expect(unifiedDiff(a, a, 'x', 'y')).toBe('');
    expect(unifiedDiff('', 'one\n', 'policy v0', 'policy v1')).toBe('--- policy v0\n+++ policy v1\n@@ -0,0 +1 @@\n+one\n');
    expect(unifiedDiff('one', 'one\n', 'a', 'b')).toBe('--- a\n+++ b\n@@ -1 +1 @@\n-one\n\\ No newline at end of file\n+one\n');
  });

  it('far-apart changes are separate hunks; close ones share one', () => {
    const a = Array.from({ length: 30 }, (_, i) => `line ${i}`);
    const b = [...a];
    b[2] = 'changed 2';
    b[25] = 'changed 25';
    const d = unifiedDiff(a.join('\n') + '\n', b.join('\n') + '\n', 'a', 'b');
    expect(d.split('\n').filter((l) => l.startsWith('@@'))).toEqual(['@@ -1,6 +1,6 @@', '@@ -23,7 +23,7 @@']);
    b[8] = 'changed 8';
    const close = unifiedDiff(a.join('\n') + '\n', b.join('\n') + '\n', 'a', 'b');
    expect(close.split('\n').filter((l) => l.startsWith('@@'))).toEqual(['@@ -1,12 +1,12 @@', '@@ -23,7 +23,7 @@']);
  });

  it('applying the diff to the old text gives the new text, on 500 random edits', () => {
    const r = prng(42);
    const int = (n: number) => Math.floor(r() * n);
    const vocab = ['{', '}', '"acls": [', '],', '// a comment', 'x', 'y', ''];
    for (let c = 0; c < 500; c++) {
      const a = Array.from({ length: int(40) }, () => vocab[int(vocab.length)]!);
      const b = [...a];
      for (let e = int(6); e > 0; e--) {
        const at = int(b.length + 1);
        if (r() < 0.4) b.splice(at, 1 + int(3));
        else if (r() < 0.5) b.splice(at, 0, ...Array.from({ length: 1 + int(3) }, () => vocab[int(vocab.length)]!));
        else b[at] = `edited ${c}`;
      }
      const oldText = a.join('\n') + (r() < 0.7 ? '\n' : '');
      const newText = b.join('\n') + (r() < 0.7 ? '\n' : '');
      const d = unifiedDiff(oldText, newText, 'a', 'b');
      expect(apply(oldText, d), `case ${c}\n${JSON.stringify(oldText)}\n${JSON.stringify(newText)}\n${d}`).toBe(newText);
    }
  });

  it('the edit script is minimal on a known case', () => {
    const ops = diffLines(['a', 'b', 'c', 'a', 'b', 'b', 'a'], ['c', 'b', 'a', 'b', 'a', 'c']);
    expect(ops.filter((o) => o.kind !== ' ')).toHaveLength(5); // the Myers paper's example: D = 5
  });

  it('an edit past the search bound still round-trips, as whole lines out and in', () => {
    const a = Array.from({ length: 3000 }, (_, i) => `old ${i}`).join('\n') + '\n';
    const b = Array.from({ length: 3000 }, (_, i) => `new ${i}`).join('\n') + '\n';
    const d = unifiedDiff(a, b, 'a', 'b');
    expect(apply(a, d)).toBe(b);
  });
});
