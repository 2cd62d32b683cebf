/**
 * `weft-server policy ...`: `compile` here, offline; the verbs that talk to a running server
 * (get, set, check, history, rollback, explain) in policy-admin.ts.
 *
 * `weft-server policy compile POLICY_FILE --nodes NODES_JSON [--json]`: evaluates a policy against
 * a given set of nodes with no server and no database, so an operator can preview a change and a
 * script can diff it. Exit 0 with the result on stdout, 1 when the policy is rejected (every reason
 * on stderr as FILE:line:col), 2 for usage errors (including an unreadable or malformed nodes file).
 */
import { evaluate, parseNodes, PolicyRejected, type Compiled, type Prepared } from '@weft/policy';
import { terminalSafeLines } from '@weft/protocol/terminal-text';
import { parseArgs, UsageError } from './args.js';
import { POLICY_USAGE } from './help.js';
import { POLICY_ADMIN_VERBS, POLICY_VALUE_FLAGS, policyAdmin, readText } from './policy-admin.js';
import { table } from './table.js';

const Exit = { Ok: 0, Rejected: 1, Usage: 2 } as const;

type Write = (s: string) => Promise<void>;

/** Resolves once the text is handed to the OS (or the pipe closes), so a piped megabyte is never cut short. */
const toStream = (stream: NodeJS.WriteStream): Write => (s) => new Promise((res) => {
  stream.write(s, () => res());
});

export async function policyCommand(argv: string[], out: Write = toStream(process.stdout), err: Write = toStream(process.stderr)): Promise<number> {
  try {
    return await run(argv, out, err);
  } catch (e) {
    if (e instanceof UsageError) {
      await err(terminalSafeLines(`weft-server: ${e.message}\n\n${POLICY_USAGE}`) + '\n');
      return Exit.Usage;
    }
    throw e;
  }
}

async function run(argv: string[], out: Write, err: Write): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
    await out(POLICY_USAGE + '\n');
    return Exit.Ok;
  }
  // Everything but compile talks to a running server.
  if ((POLICY_ADMIN_VERBS as readonly string[]).includes(verbOf(argv) ?? '')) return policyAdmin(argv, out, err);
  const p = parseArgs(argv, { boolean: ['json', 'help'], string: ['nodes'] });
  const [verb, file, ...extra] = p.positional;
  if (verb !== 'compile') throw new UsageError(verb ? `unknown policy command "${verb}"` : 'policy needs a command');
  if (!file) throw new UsageError('policy compile needs POLICY_FILE');
  if (extra.length) throw new UsageError(`unexpected argument "${extra[0]}"`);
  const nodesFile = p.flags.get('nodes');
  if (typeof nodesFile !== 'string') throw new UsageError('policy compile needs --nodes NODES_JSON');
  const policyText = await readText(file);
  const nodesText = await readText(nodesFile);

  let nodes: Prepared;
  try {
    nodes = parseNodes(nodesText);
  } catch (e) {
    if (!(e instanceof PolicyRejected)) throw e;
    await err(terminalSafeLines(report(`weft-server: nodes file ${nodesFile} is not valid`, nodesFile, e)) + '\n');
    return Exit.Usage;
  }
  let compiled: Compiled;
  try {
    compiled = evaluate(policyText, nodes);
  } catch (e) {
    if (!(e instanceof PolicyRejected)) throw e;
    await err(terminalSafeLines(report(`weft-server: policy ${file} rejected`, file, e)) + '\n');
    return Exit.Rejected;
  }
  await out(p.flags.has('json') ? JSON.stringify(compiled) + '\n' : summary(compiled) + '\n');
  return Exit.Ok;
}

/** The first word that is neither a flag nor the value of one (`policy --server URL get`). */
function verbOf(argv: string[]): string | undefined {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (!a.startsWith('--')) return a;
    if (!a.includes('=') && POLICY_VALUE_FLAGS.includes(a.slice(2))) i++;
  }
  return undefined;
}

function report(head: string, file: string, e: PolicyRejected): string {
  const n = e.errors.length;
  return [`${head} (${n} problem${n === 1 ? '' : 's'}):`, ...e.errors.map((x) => `  ${file}:${x.pos.line}:${x.pos.col}: ${x.message}`)].join('\n');
}

const PEERS_SHOWN = 5;

function summary(c: Compiled): string {
  const entries = Object.entries(c.nodes);
  const rules = entries.reduce((s, [, v]) => s + v.rules.length, 0);
  const links = entries.reduce((s, [, v]) => s + v.peers.length, 0) / 2;
  const rows = entries.map(([name, v]) => [
    name,
    v.rules.length,
    v.peers.length,
    v.peers.length === 0 ? '-' : v.peers.slice(0, PEERS_SHOWN).join(', ') + (v.peers.length > PEERS_SHOWN ? `, ... (${v.peers.length - PEERS_SHOWN} more)` : ''),
  ]);
  return `policy accepted: ${entries.length} node${entries.length === 1 ? '' : 's'}, ${rules} filter rule${rules === 1 ? '' : 's'}, ${links} visible pair${links === 1 ? '' : 's'} (--json for the full result)\n\n${table(['NODE', 'RULES', 'PEERS', 'SEES'], rows)}`;
}
