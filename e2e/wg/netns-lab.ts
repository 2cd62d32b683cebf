/**
 * A throwaway lab for the wg e2e tests: network namespaces named `wgt-<run>-<host>` on one
 * bridge (underlay 10.231.0.0/24), with cleanup of leftovers from a crashed earlier run.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';

export const PREFIX = 'wgt-';
/** Interface names (<= 15 chars) also start with this so stale ones can be found. */
export const IF_PREFIX = 'wgte2e';

export function sh(argv: string[], opts: { netns?: string; allowFail?: boolean } = {}): string {
  const full = opts.netns ? ['ip', 'netns', 'exec', opts.netns, ...argv] : argv;
  try {
    return execFileSync(full[0]!, full.slice(1), { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 30_000 });
  } catch (err) {
    if (opts.allowFail) return '';
    const e = err as { stderr?: string; message: string };
    throw new Error(`\`${full.join(' ')}\` failed: ${e.stderr?.trim() || e.message}`);
  }
}

/** Fails (never skips) when the machine cannot run these tests, saying what to install. */
export function preflight(): void {
  const missing: string[] = [];
  if (process.getuid?.() !== 0) throw new Error('wg e2e tests must run as root (network namespaces, TUN devices)');
  for (const [bin, pkg] of [['wireguard-go', 'wireguard-go'], ['wg', 'wireguard-tools'], ['ip', 'iproute2'], ['ping', 'iputils-ping']]) {
    try { execFileSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }); } catch { missing.push(pkg!); }
  }
  if (missing.length) throw new Error(`wg e2e tests need: apt-get install ${missing.join(' ')}`);
  if (!existsSync('/dev/net/tun')) throw new Error('wg e2e tests need /dev/net/tun (modprobe tun)');
}

/** Removes namespaces, wireguard-go processes and sockets left by an earlier run with our prefix. */
export function cleanStale(): void {
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    let cmd = '';
    try { cmd = readFileSync(`/proc/${pid}/cmdline`, 'utf8'); } catch { continue; }
    const argv = cmd.split('\0');
    const ours = argv.some((a) => a.endsWith('wireguard-go')) && argv.some((a) => a.startsWith(IF_PREFIX) && a.length <= 15);
    // Only processes living in one of our namespaces: never someone else's wireguard-go.
    if (ours && sh(['ip', 'netns', 'identify', pid], { allowFail: true }).trim().startsWith(PREFIX)) {
      try { process.kill(Number(pid), 'SIGKILL'); } catch { /* gone */ }
    }
  }
  for (const line of sh(['ip', 'netns', 'list'], { allowFail: true }).split('\n')) {
    const ns = line.split(' ')[0];
    if (ns?.startsWith(PREFIX)) sh(['ip', 'netns', 'del', ns], { allowFail: true });
  }
  if (existsSync('/var/run/wireguard')) {
    for (const f of readdirSync('/var/run/wireguard')) {
      if (f.startsWith(IF_PREFIX) && f.endsWith('.sock')) rmSync(`/var/run/wireguard/${f}`, { force: true });
    }
  }
}

export interface Host { ns: string; underlay: string; ifname: string }

export class Lab {
  readonly run = randomBytes(2).toString('hex');
  readonly hub = `${PREFIX}${this.run}-hub`;
  readonly hosts: Host[] = [];

  constructor(names: string[]) {
    sh(['ip', 'netns', 'add', this.hub]);
    sh(['ip', 'link', 'add', 'br0', 'type', 'bridge'], { netns: this.hub });
    sh(['ip', 'link', 'set', 'br0', 'up'], { netns: this.hub });
    names.forEach((name, i) => {
      const ns = `${PREFIX}${this.run}-${name}`;
      sh(['ip', 'netns', 'add', ns]);
      const outer = `v${this.run}${i}`;
      sh(['ip', 'link', 'add', outer, 'netns', this.hub, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', ns]);
      sh(['ip', 'link', 'set', outer, 'master', 'br0', 'up'], { netns: this.hub });
      const underlay = `10.231.0.${i + 1}`;
      sh(['ip', 'addr', 'add', `${underlay}/24`, 'dev', 'eth0'], { netns: ns });
      sh(['ip', 'link', 'set', 'eth0', 'up'], { netns: ns });
      sh(['ip', 'link', 'set', 'lo', 'up'], { netns: ns });
      this.hosts.push({ ns, underlay, ifname: `${IF_PREFIX}${this.run}${name}`.slice(0, 15) });
    });
  }

  destroy(): void {
    for (const h of this.hosts) sh(['ip', 'netns', 'del', h.ns], { allowFail: true });
    sh(['ip', 'netns', 'del', this.hub], { allowFail: true });
  }
}

/** `ping` inside a namespace; resolves with packets sent/received (never rejects on loss). */
export function ping(ns: string, target: string, args: string[]): Promise<{ sent: number; received: number; out: string }> {
  return new Promise((resolve, reject) => {
    const p = spawn('ip', ['netns', 'exec', ns, 'ping', '-n', ...args, target], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    p.stdout.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr.on('data', (d: Buffer) => { out += d.toString(); });
    p.on('error', reject);
    p.on('close', () => {
      const m = /(\d+) packets transmitted, (\d+) received/.exec(out);
      resolve({ sent: Number(m?.[1] ?? 0), received: Number(m?.[2] ?? 0), out });
    });
  });
}

/** Retries a single ping until one gets through or `ms` passes. */
export async function pingUntil(ns: string, target: string, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (Date.now() < deadline) {
    if ((await ping(ns, target, ['-c', '1', '-W', '1'])).received === 1) return true;
  }
  return false;
}
