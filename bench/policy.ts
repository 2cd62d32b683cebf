/**
 * `npm run bench:policy` — the policy engine at fleet scale, and against its naive reference.
 *
 * Inputs (seeded, so every run compiles the same thing): NODES nodes, USERS users in GROUPS groups
 * (each user in one or two), TAGS tags, RULES rules (acls and grants: groups -> tags on ports,
 * tags -> tags, members -> autogroup:self, a few CIDRs). 30% of nodes are tagged.
 * Measured: parse, node preparation, compile (median of COMPILE_ROUNDS), output size and heap
 * growth; at full scale, a one-rule change as the server's mapper computes it (new views from
 * the changed policy, and per node whether its view or filter changed: the nodes sent a delta);
 * the naive reference on the same inputs when they are small enough to finish (it is
 * O(nodes^2 x rules)), and at every scale on the reduced inputs listed in `scales`, each with its
 * engine time in the same run, so the ratio compares like with like.
 *
 * Writes bench/results/policy.json. Env: BENCH_POLICY_REFERENCE_MAX_NODES (default 500: the reference needs minutes beyond that).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { compile, compileReference, parseNodes, parsePolicy, PolicyViews, runTests, type LiveNode, type Prepared } from '../packages/policy/src/index.js';
import { loadavg } from 'node:os';
import { machine } from './lib/machine.js';
import { inputs, type Scale } from './lib/policy-inputs.js';
import { median, round } from './lib/stats.js';

/** Read before anything runs: the load the run started under (machine.loadAvg1m), and loadAvg1mAtEnd after. */
const MACHINE = machine();
const OUT = fileURLToPath(new URL('./results/policy.json', import.meta.url));
const FULL = { nodes: 10_000, users: 200, groups: 50, tags: 500, rules: 1_000 };
const REFERENCE_MAX_NODES = Number(process.env.BENCH_POLICY_REFERENCE_MAX_NODES ?? 500);
const COMPILE_ROUNDS = 3;
const TARGET_COMPILE_MS = 1000;
const TARGET_ONE_RULE_MS = 1000;
const ONE_RULE_ROUNDS = 3;

/** Wall time, and this process's CPU time (user + system: on a loaded shared machine the wall time includes waiting for a core). */
function time<T>(f: () => T): { ms: number; cpuMs: number; value: T } {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = f();
  const c = process.cpuUsage(c0);
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, cpuMs: (c.user + c.system) / 1000, value };
}

/**
 * A one-rule change as the server's mapper computes it (apps/server/src/mapper/mapper.ts
 * policyChanged -> PolicyNetmaps.update): parse the new text, update the views in force in place
 * (`PolicyViews.update`: only the nodes the changed rule names are placed again), take the
 * changes, and rebuild the packet filter of each node reported; the nodes whose view or filter
 * differs are the ones sent a delta. Serializing peer entries and the sockets are left out
 * (bench:control's policyChange row times those end to end).
 */
function oneRuleChange(policyText: string, prepared: Prepared) {
  const live: LiveNode[] = prepared.nodes.map((n) => ({ id: n.idx + 1, login: n.tagged ? null : n.input.user, tags: [...n.input.tags].sort(), ipv4: n.input.ipv4, ipv6: n.input.ipv6 }));
  const base = JSON.parse(policyText) as { acls: unknown[]; groups: Record<string, string[]>; tagOwners: Record<string, string[]> };
  const tag = Object.keys(base.tagOwners)[1]!;
  const plusOne = JSON.stringify({ ...base, acls: [...base.acls, { action: 'accept', src: [Object.keys(base.groups)[0]!], dst: [`${tag}:443`] }] });
  const views = new PolicyViews(parsePolicy(policyText));
  views.load(live);
  const filters = new Map<number, string>();
  for (const n of live) filters.set(n.id, JSON.stringify(views.filterOf(n.id))); // every connected node got its filter in its netmap
  const rounds: { ms: number; cpuMs: number; affectedNodes: number; placedAgain: number }[] = [];
  let text = policyText;
  for (let r = 0; r < ONE_RULE_ROUNDS * 2; r++) {
    const nextText = text === policyText ? plusOne : policyText;
    const t = time(() => {
      if (!views.update(parsePolicy(nextText))) throw new Error('a one-rule change fell back to a full rebuild');
      const c = views.take();
      const affected = new Set<number>();
      for (const [id, m] of c.moved) {
        const now = views.peersOf(id);
        if (!m.before || now.length !== m.before.size || now.some((x) => !m.before!.has(x))) affected.add(id);
      }
      for (const [cls, d] of c.classes) if (d.added.size || d.removed.size) for (const id of cls.members) affected.add(id);
      for (const id of c.filters) {
        const f = JSON.stringify(views.filterOf(id));
        if (f !== filters.get(id)) affected.add(id);
        filters.set(id, f);
      }
      return { affected: affected.size, placedAgain: c.moved.size };
    });
    text = nextText;
    rounds.push({ ms: round(t.ms), cpuMs: round(t.cpuMs), affectedNodes: t.value.affected, placedAgain: t.value.placedAgain });
  }
  // The first round is the engine's first change (cold); the rest alternate adding and removing the rule.
  return {
    change: `one acl added then removed, alternately (${Object.keys(base.groups)[0]} -> ${tag}:443), ${ONE_RULE_ROUNDS * 2} rounds`,
    rounds,
    ms: { median: round(median(rounds.map((x) => x.ms))), max: round(Math.max(...rounds.map((x) => x.ms))) },
    cpuMs: { median: round(median(rounds.map((x) => x.cpuMs))) },
  };
}

function run(s: Scale, withReference: boolean) {
  const inp = inputs(s);
  const heap0 = process.memoryUsage().heapUsed;
  const parse = time(() => parsePolicy(inp.policy));
  const prep = time(() => parseNodes(inp.nodes));
  const rounds: number[] = [];
  const cpuRounds: number[] = [];
  let compiled = compile(parse.value, prep.value);
  for (let i = 0; i < COMPILE_ROUNDS; i++) {
    const c = time(() => compile(parse.value, prep.value));
    rounds.push(c.ms);
    cpuRounds.push(c.cpuMs);
    compiled = c.value;
  }
  const heapMiB = (process.memoryUsage().heapUsed - heap0) / 2 ** 20;
  const tests = time(() => runTests(parse.value, compiled));
  const json = time(() => JSON.stringify(compiled.compiled));
  const views = Object.values(compiled.compiled.nodes);
  const peers = views.map((v) => v.peers.length).sort((a, b) => a - b);
  const row: Record<string, unknown> = {
    ...s,
    parsePolicyMs: round(parse.ms),
    prepareNodesMs: round(prep.ms),
    compileMs: round(median(rounds)),
    compileRoundsMs: rounds.map(round),
    compileCpuMs: round(median(cpuRounds)),
    serializeMs: round(json.ms),
    outputMiB: round(json.value.length / 2 ** 20),
    heapGrowthMiB: round(heapMiB),
    filterRules: views.reduce((a, v) => a + v.rules.length, 0),
    peersPerNode: { p50: peers[Math.floor(peers.length / 2)] ?? 0, max: peers[peers.length - 1] ?? 0 },
    testsMs: round(tests.ms),
  };
  if (s.nodes === FULL.nodes) row.oneRuleChange = oneRuleChange(inp.policy, prep.value);
  if (withReference) {
    const ref = time(() => compileReference(parse.value, prep.value));
    row.referenceMs = round(ref.ms);
    row.referenceCpuMs = round(ref.cpuMs);
    row.referenceOverEngine = round(ref.ms / median(rounds));
    row.referenceMatches = JSON.stringify(ref.value) === json.value;
  } else {
    row.reference = `not run: O(nodes^2 x rules) at ${s.nodes} nodes; set BENCH_POLICY_REFERENCE_MAX_NODES=${s.nodes} to force it`;
  }
  return row;
}

const scaled = (f: number): Scale => ({ nodes: Math.round(FULL.nodes / f), users: Math.max(1, Math.round(FULL.users / f)), groups: Math.max(1, Math.round(FULL.groups / f)), tags: Math.max(1, Math.round(FULL.tags / f)), rules: Math.round(FULL.rules / f) });

const scales = [scaled(40), scaled(20), scaled(10)].filter((s) => s.nodes <= REFERENCE_MAX_NODES).map((s) => {
  const row = run(s, true);
  console.log(JSON.stringify(row));
  return row;
});
const full = run(FULL, FULL.nodes <= REFERENCE_MAX_NODES);
console.log(JSON.stringify(full));

const result = {
  benchmark: 'policy',
  date: new Date().toISOString(),
  machine: MACHINE,
  setup: 'one process, engine and reference in the same run on the same seeded inputs (bench/policy.ts); compileMs (wall) and compileCpuMs (CPU time of the process, GC threads included) are medians of ' + COMPILE_ROUNDS + ' rounds after one warm-up; a loaded machine inflates the wall time (see machine.loadAvg1m); the reference is the naive O(nodes^2 x rules) implementation in packages/policy/src/reference.ts, run where it finishes in reasonable time (scales), with its ratio to the engine at that scale',
  targets: { fullCompileMs: TARGET_COMPILE_MS, oneRuleChangeMs: TARGET_ONE_RULE_MS },
  loadAvg1mAtEnd: round(loadavg()[0]!),
  full,
  fullCompileUnderTarget: (full.compileMs as number) < TARGET_COMPILE_MS,
  oneRuleChangeUnderTarget: (full.oneRuleChange as { ms: { max: number } }).ms.max < TARGET_ONE_RULE_MS,
  scales,
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${OUT}`);
