/**
 * `npm run bench:nft` — how long the agent takes to put a packet filter in force with nftables,
 * at 100, 1,000 and 10,000 peer source addresses (issue 10: 10,000 in under 200 ms).
 *
 * Runs the agent's own Firewall (apps/agent/src/firewall) against real nft in a network
 * namespace of its own (root), with a WireGuard-like dummy interface name. Addresses are every
 * other one of 100.64.0.0/10 and of the ULA /48, half IPv4 and half IPv6, so none merge into a
 * range: each is its own set element (the worst case; consecutive node addresses would merge).
 * They are spread over 10 rules (10 ports, plus ICMP), as a policy gives them.
 *
 * Per size: the first apply (table created) and ROUNDS replacements by a changed filter (the
 * usual case: one transaction deleting and rebuilding the table), each timed end to end
 * (checking and rendering the filter, `nft -f`, the conntrack listing) and split into render and
 * nft time. Writes bench/results/nft.json with the machine noted.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runCommand, type CommandRunner } from '../apps/agent/src/firewall/exec.js';
import { checkFilter, type WireFilter } from '../apps/agent/src/firewall/filter.js';
import { Firewall } from '../apps/agent/src/firewall/firewall.js';
import { renderRuleset } from '../apps/agent/src/firewall/render.js';
import { silentLogger } from '../apps/agent/src/log.js';
import { machine } from './lib/machine.js';
import { median, round } from './lib/stats.js';

const OUT = fileURLToPath(new URL('./results/nft.json', import.meta.url));
const SIZES = [100, 1_000, 10_000];
const ROUNDS = 7;
const TARGET_MS = 200;
const RULES = 10;
const NS = `weft-bench-nft-${process.pid}`;
const IFACE = 'weft0';

function v4(i: number): string {
  const n = 0x64400000 + 2 * i; // 100.64.0.0 + 2i
  return [24, 16, 8, 0].map((s) => (n >>> s) & 0xff).join('.');
}
const v6 = (i: number) => `fd7a:115c:a1e0::${(2 * i).toString(16)}`;

/** `addresses` sources over RULES rules; `variant` changes the ports, so each apply is a real change. */
function filterOf(addresses: number, variant: number): WireFilter {
  const rules: WireFilter = [];
  for (let r = 0; r < RULES; r++) {
    const srcIPs: string[] = [];
    for (let i = r; i < addresses; i += RULES) srcIPs.push(i % 2 === 0 ? v4(i) : v6(i));
    rules.push({ srcIPs, dstPorts: [{ ip: '100.64.255.1', ports: String(1000 + r * 10 + variant) }, { ip: 'fd7a:115c:a1e0::ffff', ports: String(1000 + r * 10 + variant) }], protos: [6, 17] });
  }
  rules.push({ srcIPs: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'], dstPorts: [{ ip: '100.64.255.1', ports: '*' }, { ip: 'fd7a:115c:a1e0::ffff', ports: '*' }], protos: [1, 58] });
  return rules;
}

const inNs: CommandRunner = (argv, input) => runCommand(['ip', 'netns', 'exec', NS, ...argv], input);

async function timed<T>(f: () => Promise<T>): Promise<number> {
  const t0 = process.hrtime.bigint();
  await f();
  return Number(process.hrtime.bigint() - t0) / 1e6;
}

async function measure(addresses: number) {
  execFileSync('ip', ['netns', 'add', NS]);
  try {
    const firewall = new Firewall({ interfaceName: IFACE, log: silentLogger, run: inNs });
    const firstMs = await timed(() => firewall.apply(filterOf(addresses, 0), []));
    const total: number[] = [];
    const render: number[] = [];
    const nft: number[] = [];
    const renderCpu: number[] = [];
    const nftCpu: number[] = [];
    const cleanup: number[] = [];
    for (let i = 1; i <= ROUNDS; i++) {
      const filter = filterOf(addresses, i % 10);
      const t0 = process.hrtime.bigint();
      const c0 = process.cpuUsage();
      const script = renderRuleset(checkFilter(filter), IFACE);
      const c = process.cpuUsage(c0);
      render.push(Number(process.hrtime.bigint() - t0) / 1e6);
      renderCpu.push((c.user + c.system) / 1000);
      // The transaction alone, with nft's own CPU time (user + system, kernel work included):
      // the part of the wall time a loaded machine does not inflate.
      const r = await runCommand(['/usr/bin/time', '-f', 'TIME %e %U %S', 'ip', 'netns', 'exec', NS, 'nft', '-f', '-'], script);
      const m = /TIME ([\d.]+) ([\d.]+) ([\d.]+)/.exec(r.stderr);
      if (r.code !== 0 || !m) throw new Error(`nft failed: ${r.stderr}`);
      nft.push(Number(m[1]) * 1000);
      nftCpu.push((Number(m[2]) + Number(m[3])) * 1000);
      total.push(await timed(() => firewall.apply(filterOf(addresses, (i + 5) % 10), [])));
      cleanup.push(await timed(() => firewall.settled()));
    }
    const listed = execFileSync('ip', ['netns', 'exec', NS, 'nft', 'list', 'table', 'inet', 'weft'], { encoding: 'utf8', maxBuffer: 64 << 20 });
    const elements = (listed.match(/(\d+\.){3}\d+|fd7a:115c:a1e0::[0-9a-f]+/g) ?? []).length;
    return {
      addresses,
      setElementsListed: elements,
      scriptKiB: round(Buffer.byteLength(renderRuleset(checkFilter(filterOf(addresses, 0)), IFACE)) / 1024),
      firstApplyMs: round(firstMs),
      applyMs: round(median(total)),
      applyMaxMs: round(Math.max(...total)),
      applyRoundsMs: total.map(round),
      renderMs: round(median(render)),
      renderCpuMs: round(median(renderCpu)),
      nftTransactionMs: round(median(nft)),
      nftTransactionCpuMs: round(median(nftCpu)),
      /** CPU of one apply on an idle machine, roughly: render + nft's own. */
      applyCpuMs: round(median(renderCpu) + median(nftCpu)),
      conntrackCleanupMs: round(median(cleanup)),
    };
  } finally {
    execFileSync('ip', ['netns', 'del', NS]);
  }
}

if (process.getuid?.() !== 0) {
  console.error('bench:nft needs root (it creates a network namespace)');
  process.exit(1);
}
const rows = [];
for (const n of SIZES) {
  const row = await measure(n);
  console.log(JSON.stringify(row));
  rows.push(row);
}
const at10k = rows.find((r) => r.addresses === 10_000)!;
const result = {
  benchmark: 'nft',
  date: new Date().toISOString(),
  machine: machine({ nft: ['nft', ['--version']], conntrack: ['conntrack', ['--version']] }),
  setup: `the agent's Firewall.apply against real nft in a fresh network namespace (bench/nft.ts): N source addresses (half IPv4, half IPv6, none adjacent, so N set elements) over ${RULES} rules plus an ICMP rule; applyMs is the median wall time of ${ROUNDS} replacements of the whole table by a changed filter in one transaction (check + render + nft -f through ip netns exec, until the filter is in force), firstApplyMs the first one (table created); renderMs / renderCpuMs and nftTransactionMs / nftTransactionCpuMs (nft's user + system time from /usr/bin/time) split a replacement into its in-process and nft parts, applyCpuMs adds the two CPU times; conntrackCleanupMs is the listing of flows that lost permission that follows (after the filter is in force, not part of apply); wall times on a shared machine (see machine.loadAvg1m) include waiting for a core`,
  targets: { applyMsAt10000: TARGET_MS },
  rows,
  underTargetWall: at10k.applyMs < TARGET_MS,
  underTargetCpu: at10k.applyCpuMs < TARGET_MS,
};
mkdirSync(dirname(OUT), { recursive: true });
writeFileSync(OUT, JSON.stringify(result, null, 2) + '\n');
console.log(`wrote ${OUT}`);
