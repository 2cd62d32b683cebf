/**
 * A clone has everything its files point to: the design rationale and the style guide live in
 * docs/, and no tracked file sends readers to the directory this repository once sat beside.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));
const tracked = execFileSync('git', ['ls-files', '--cached', '--others', '--exclude-standard'], { cwd: root, encoding: 'utf8' })
  .split('\n').filter((f) => f && existsSync(join(root, f)) && !/\.(png|jpg|tgz|wasm)$/.test(f) && f !== 'package-lock.json');

describe('the repository is self-contained', () => {
  it('no file points to a shared directory beside the repo or to design notes outside it', () => {
    // Built from parts so this file does not match itself.
    const outside = new RegExp(['\\.\\./' + 'shared', '/work/' + 'shared', '(?<![\\w/.-])' + '(DESIGN|STYLE)' + '\\.md'].join('|'));
    const hits = tracked.flatMap((f) => readFileSync(join(root, f), 'utf8').split('\n')
      .map((line, i) => (outside.test(line) ? `${f}:${i + 1}: ${line.trim()}` : null))
      .filter((x): x is string => x !== null));
    expect(hits).toEqual([]);
  });

  it('ARCHITECTURE.md names the design and style docs that are in docs/', () => {
    const arch = readFileSync(join(root, 'ARCHITECTURE.md'), 'utf8');
    for (const doc of ['docs/design.md', 'docs/style.md']) {
      expect(arch).toContain(doc);
      expect(existsSync(join(root, doc))).toBe(true);
    }
  });
});
