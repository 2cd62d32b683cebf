/**
 * ARCHITECTURE.md's table is enforced, not only written: a workspace's sources may import only
 * the @weft/* packages its "may import" cell names. A new import across a boundary fails here
 * until the table (and the review that changes it) says it may.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

function workspaces(): string[] {
  return ['packages', 'apps'].flatMap((d) => readdirSync(join(root, d)).map((w) => `${d}/${w}`)).filter((w) => statSync(join(root, w)).isDirectory());
}

function tableRows(): Map<string, string> {
  const rows = new Map<string, string>();
  for (const line of readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8').split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const m = /^`((?:packages|apps)\/[\w-]+)`$/.exec(cells[1] ?? '');
    if (m) rows.set(m[1]!, cells[3] ?? '');
  }
  return rows;
}

function sources(dir: string): string[] {
  let out: string[] = [];
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) out = out.concat(sources(p));
    else if (/\.(ts|mts|tsx)$/.test(e.name)) out.push(p);
  }
  return out;
}

describe('import boundaries (ARCHITECTURE.md)', () => {
  const rows = tableRows();

  it('every workspace has a row in the table', () => {
    expect(workspaces().filter((w) => !rows.has(w))).toEqual([]);
  });

  it("each workspace's sources import only the @weft packages its row allows", () => {
    const bad: string[] = [];
    for (const w of workspaces()) {
      const self = JSON.parse(readFileSync(join(root, w, 'package.json'), 'utf8')).name as string;
      const allowed = new Set((rows.get(w) ?? '').match(/\b[a-z][\w-]*\b/g) ?? []);
      let files: string[] = [];
      try {
        files = sources(join(root, w, 'src'));
      } catch {
        continue;
      }
      for (const f of files) {
        readFileSync(f, 'utf8').split('\n').forEach((line, i) => {
          for (const m of line.matchAll(/(?:from\s+|import\s*\(\s*|import\s+)'@weft\/([\w-]+)/g)) {
            if (`@weft/${m[1]}` !== self && !allowed.has(m[1]!)) bad.push(`${f.slice(root.length)}:${i + 1}: imports @weft/${m[1]}`);
          }
        });
      }
    }
    expect(bad).toEqual([]);
  });

  it('the check sees a forbidden import (it is not vacuous)', () => {
    // The agent must not import the server or the database: were the regex blind, this row would allow anything.
    expect(rows.get('apps/agent')).not.toMatch(/\bdb\b|\bserver\b/);
    expect("import { x } from '@weft/db';".match(/(?:from\s+|import\s*\(\s*|import\s+)'@weft\/([\w-]+)/)?.[1]).toBe('db');
  });
});
