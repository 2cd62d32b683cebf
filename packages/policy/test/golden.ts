/**
 * The golden cases: each directory under golden/ holds policy.hujson (absent = no policy) and is
 * compiled against golden/shared-nodes.json (or its own nodes.json). An accepted policy's output is
 * expected.json; a rejected one's problems are expected-errors.txt.
 *
 * Regenerate after an intended change, then review the diff like code:
 *   npx tsx packages/policy/test/golden.ts --write && git diff packages/policy/test/golden
 */
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evaluate, parseNodes, PolicyRejected } from '../src/index.js';

export const GOLDEN = join(import.meta.dirname, 'golden');

export function goldenCases(): string[] {
  return readdirSync(GOLDEN).filter((d) => statSync(join(GOLDEN, d)).isDirectory()).sort();
}

/** The case's output as the text its expected file holds. */
export function render(name: string): { file: string; text: string } {
  const dir = join(GOLDEN, name);
  const nodesFile = existsSync(join(dir, 'nodes.json')) ? join(dir, 'nodes.json') : join(GOLDEN, 'shared-nodes.json');
  const policyFile = join(dir, 'policy.hujson');
  const policy = existsSync(policyFile) ? readFileSync(policyFile, 'utf8') : null;
  try {
    return { file: 'expected.json', text: JSON.stringify(evaluate(policy, parseNodes(readFileSync(nodesFile, 'utf8'))), null, 2) + '\n' };
  } catch (e) {
    if (!(e instanceof PolicyRejected)) throw e;
    return { file: 'expected-errors.txt', text: e.errors.map((x) => `${x.pos.line}:${x.pos.col}: ${x.message}`).join('\n') + '\n' };
  }
}

if (process.argv.includes('--write')) {
  for (const name of goldenCases()) {
    const { file, text } = render(name);
    writeFileSync(join(GOLDEN, name, file), text);
    console.log(`wrote ${join('golden', name, file)}`);
  }
}
