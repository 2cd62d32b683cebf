/**
 * The real-network lab: hosts are Linux network namespaces, each with a veth whose other end sits on
 * a bridge. The bridge lives in a namespace of its own, so the root namespace (the machine running
 * the tests) gets no interface, address or route from us.
 *
 *   wl-NAME-lan   [br0]--vh0--+--vh1--+-- ...          (bridge namespace)
 *                             |       |
 *   wl-NAME-HOST0          eth0     eth0              (10.77.0.10, .11, ...)
 *
 * Everything a lab starts is tracked and `cleanup()` removes it: tracked processes (their whole
 * process groups, SIGTERM then SIGKILL), anything else still running in its namespaces, the
 * namespaces (deleting the bridge namespace deletes the veths), the per-run temp dir.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { execOkIn, execIn, pidAlive } from './exec.js';
import { track, untrack } from './hooks.js';
import { Host, type HostOwner } from './host.js';
import { LabLock } from './lock.js';
import { attachHost, Router, type Network, type RouterOptions, type RouterOwner } from './nat.js';
import { preflight } from './preflight.js';
import type { LabProcess } from './process.js';
import { waitFor } from './wait.js';

export interface LabOptions<H extends string> {
  /** 1-6 of a-z 0-9. Namespaces are `wl-NAME-*`; one live lab per name on this machine. */
  name: string;
  /** Host names: a-z then a-z 0-9, at most 12 characters, at most 26 hosts, not "lan". */
  hosts: readonly H[];
  /** First three octets of the LAN /24. Default "10.77.0"; host i gets .(10 + i). */
  subnet?: string;
  /** How long to wait for another run using the same lab name. Default 90 s. */
  lockTimeoutMs?: number;
  /** Keep the temp dir (logs) after cleanup. Default: env WEFT_LAB_KEEP=1. */
  keepTmp?: boolean;
}

export interface CleanupReport {
  /** Pids of tracked processes that were still running. */
  stopped: number[];
  /** Pids found in the namespaces that the lab had not started itself (or their children). */
  strays: number[];
  namespaces: string[];
}

const NAME_RE = /^[a-z0-9]{1,6}$/;
const HOST_RE = /^[a-z][a-z0-9]{0,11}$/;

export const nsPrefix = (labName: string) => `wl-${labName}-`;

export class Lab<H extends string = string> implements HostOwner, RouterOwner {
  readonly hosts: Readonly<Record<H, Host>>;
  readonly bridgeNs: string;
  /** The lab LAN as a network hosts and routers plug into: the "internet" (server side). */
  readonly internet: Network;
  /** NAT routers added with `addRouter`, in order. */
  readonly routers: Router[] = [];
  private readonly extraNamespaces: string[] = [];
  readonly logDir: string;
  /** Every process started through a host's `spawn`, in start order. */
  readonly processes: LabProcess[] = [];
  private closed = false;
  private failed = false;
  private tailsPrinted = false;
  private logSeq = 0;

  private constructor(
    readonly name: string,
    readonly tmpDir: string,
    hostNames: readonly H[],
    subnet: string,
    private readonly lock: LabLock,
    private readonly keepTmp: boolean,
  ) {
    this.bridgeNs = `${nsPrefix(name)}lan`;
    this.logDir = join(tmpDir, 'logs');
    this.internet = { name: 'internet', ns: this.bridgeNs, subnet, gateway: null };
    const hosts = {} as Record<H, Host>;
    hostNames.forEach((h, i) => {
      hosts[h] = new Host(this, h, i, `${nsPrefix(name)}${h}`, `${subnet}.${10 + i}`);
    });
    this.hosts = hosts;
  }

  /**
   * Checks prerequisites (root, binaries), takes the lab-name lock, sweeps what a crashed earlier run
   * with the same name left behind, and builds the LAN. On any failure it tears down what it built.
   */
  static async create<const H extends string>(opts: LabOptions<H>): Promise<Lab<H>> {
    preflight();
    if (!NAME_RE.test(opts.name)) throw new Error(`lab name ${JSON.stringify(opts.name)} must be 1-6 of a-z 0-9`);
    if (opts.hosts.length === 0 || opts.hosts.length > 26) throw new Error('a lab has 1 to 26 hosts');
    for (const h of opts.hosts) {
      if (!HOST_RE.test(h) || h === 'lan') throw new Error(`host name ${JSON.stringify(h)} must be a-z then up to 11 of a-z 0-9, not "lan"`);
    }
    if (new Set(opts.hosts).size !== opts.hosts.length) throw new Error('host names must be unique');
    const subnet = opts.subnet ?? '10.77.0';

    const lock = await LabLock.acquire(opts.name, opts.lockTimeoutMs ?? 90_000);
    let lab: Lab<H> | undefined;
    try {
      await sweepStale(opts.name);
      const tmp = mkdtempSync(join(tmpdir(), `weft-lab-${opts.name}-`));
      lab = new Lab(opts.name, tmp, opts.hosts, subnet, lock, opts.keepTmp ?? process.env.WEFT_LAB_KEEP === '1');
      mkdirSync(lab.logDir, { recursive: true });
      for (const h of Object.values<Host>(lab.hosts)) mkdirSync(join(tmp, h.name), { recursive: true, mode: 0o700 });
      track(lab);
      await lab.build();
      return lab;
    } catch (err) {
      if (lab) await lab.cleanup().catch(() => {});
      else lock.release();
      throw err;
    }
  }

  host(name: H): Host {
    return this.hosts[name];
  }

  /** Host namespaces, router namespaces, the bridge namespace. */
  namespaces(): string[] {
    return [...Object.values<Host>(this.hosts).map((h) => h.ns), ...this.extraNamespaces, this.bridgeNs];
  }

  /**
   * A NAT router (nat.ts) with its wan on `opts.upstream` (default the lab LAN). Cleaned up with
   * the lab, even when this call fails half-way.
   */
  async addRouter(name: string, opts: RouterOptions): Promise<Router> {
    if (this.routers.some((r) => r.name === name)) throw new Error(`router ${name} exists already`);
    const r = await Router.create(this, name, this.routers.length, opts);
    this.routers.push(r);
    return r;
  }

  /** Plugs `host` into `network` (a router, or `lab.internet` to leave every router). */
  async attach(host: Host, network: Network): Promise<void> {
    this.assertOpen(`move ${host.name}`);
    await attachHost(host, network);
  }

  /** Flushes conntrack on every router: each NAT case starts with no mappings. */
  async flushConntrack(): Promise<void> {
    for (const r of this.routers) await r.flushConntrack();
  }

  /** @internal RouterOwner: the namespace exists now and must go at cleanup. */
  adoptNamespace(ns: string): void {
    this.assertOpen(`create namespace ${ns}`);
    this.extraNamespaces.push(ns);
  }

  /** @internal HostOwner */
  assertOpen(what: string): void {
    if (this.closed) throw new Error(`lab ${this.name} is cleaned up; cannot ${what}`);
  }

  /** @internal HostOwner */
  adopt(p: LabProcess): void {
    if (this.closed) {
      p.killSync();
      throw new Error(`lab ${this.name} is cleaned up; cannot start ${p.name}`);
    }
    this.processes.push(p);
  }

  /** @internal HostOwner */
  logPath(host: string, stem: string): string {
    return join(this.logDir, `${String(++this.logSeq).padStart(3, '0')}-${host}-${stem.replace(/[^a-zA-Z0-9._-]/g, '_')}.log`);
  }

  /** Makes `cleanup()` print the log tails (the vitest helper calls this when a test fails). */
  markFailed(): void {
    this.failed = true;
  }

  /**
   * Runs `fn` (a bench script's whole use of the lab) and cleans up after it, whatever happens; if
   * it throws, the lab is marked failed, so cleanup prints every process log's tail first.
   */
  async run<T>(fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (err) {
      this.markFailed();
      throw err;
    } finally {
      await this.cleanup();
    }
  }

  /** Writes the last `lines` of every process log to stderr, so CI output shows why. */
  printLogTails(lines = 40): void {
    this.tailsPrinted = true;
    const out: string[] = [`\n===== weft lab ${this.name}: process logs (last ${lines} lines each; dir ${this.logDir}) =====`];
    for (const p of this.processes) {
      const st = p.exitStatus;
      out.push(`----- ${p.name} pid ${p.pid} ${st ? `exited ${st.code ?? st.signal}` : 'running'} (${p.logPath}) -----`);
      out.push(p.tail(lines) || '(no output)');
    }
    out.push(`===== end of weft lab ${this.name} logs =====\n`);
    process.stderr.write(out.join('\n') + '\n');
  }

  /**
   * Idempotent. Does every step even if an earlier one fails, then throws an AggregateError listing
   * what could not be removed.
   */
  async cleanup(): Promise<CleanupReport> {
    const report: CleanupReport = { stopped: [], strays: [], namespaces: [] };
    if (this.closed) return report;
    this.closed = true;
    const errors: unknown[] = [];
    if (this.failed && !this.tailsPrinted) this.printLogTails();

    const running = this.processes.filter((p) => p.running);
    report.stopped = running.map((p) => p.pid);
    await Promise.all(this.processes.map((p) => p.kill({ graceMs: 2000 }).catch((e: unknown) => errors.push(e))));

    for (const ns of this.namespaces()) {
      if (!(await nsExists(ns))) continue;
      try {
        report.strays.push(...(await killNamespacePids(ns)));
        await execOkIn(null, 'ip', ['netns', 'delete', ns], { timeoutMs: 10_000 });
        report.namespaces.push(ns);
      } catch (err) {
        errors.push(err);
      }
    }
    if (!this.keepTmp) rmSync(this.tmpDir, { recursive: true, force: true });
    else process.stderr.write(`weft lab ${this.name}: kept ${this.tmpDir}\n`);
    untrack(this);
    this.lock.release();
    if (errors.length > 0) throw new AggregateError(errors, `lab ${this.name}: cleanup incomplete`);
    return report;
  }

  /** For process exit hooks: the same as `cleanup()` with synchronous calls only. */
  cleanupSync(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.failed && !this.tailsPrinted) this.printLogTails();
    for (const p of this.processes) p.killSync();
    for (const ns of this.namespaces()) {
      const pids = spawnSync('ip', ['netns', 'pids', ns], { encoding: 'utf8', timeout: 5000 }).stdout ?? '';
      for (const pid of pids.split(/\s+/).filter(Boolean).map(Number)) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }
      spawnSync('ip', ['netns', 'delete', ns], { timeout: 5000 });
    }
    if (!this.keepTmp) rmSync(this.tmpDir, { recursive: true, force: true });
    untrack(this);
    this.lock.release();
  }

  private async build(): Promise<void> {
    const ip = (...args: string[]) => execOkIn(null, 'ip', args, { timeoutMs: 10_000 });
    await ip('netns', 'add', this.bridgeNs);
    await ip('-n', this.bridgeNs, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', this.bridgeNs, 'link', 'set', 'br0', 'up');
    await ip('-n', this.bridgeNs, 'link', 'set', 'lo', 'up');
    for (const h of Object.values<Host>(this.hosts)) {
      const port = `vh${h.index}`;
      await ip('netns', 'add', h.ns);
      await ip('-n', h.ns, 'link', 'add', 'eth0', 'type', 'veth', 'peer', 'name', port, 'netns', this.bridgeNs);
      await ip('-n', this.bridgeNs, 'link', 'set', port, 'master', 'br0', 'up');
      await ip('-n', h.ns, 'addr', 'add', `${h.ip}/24`, 'dev', 'eth0');
      await ip('-n', h.ns, 'link', 'set', 'eth0', 'up');
      await ip('-n', h.ns, 'link', 'set', 'lo', 'up');
    }
  }
}

async function nsExists(ns: string): Promise<boolean> {
  return (await listNamespaces()).includes(ns);
}

/** `ip netns list`, names only. */
export async function listNamespaces(): Promise<string[]> {
  const r = await execOkIn(null, 'ip', ['netns', 'list'], { timeoutMs: 10_000 });
  return r.stdout
    .split('\n')
    .map((l) => l.trim().split(/\s+/)[0] ?? '')
    .filter(Boolean);
}

/** Pids whose network namespace is `ns`. */
export async function namespacePids(ns: string): Promise<number[]> {
  const r = await execIn(null, 'ip', ['netns', 'pids', ns], { timeoutMs: 10_000 });
  return r.stdout.split(/\s+/).filter(Boolean).map(Number);
}

/** SIGKILLs everything in `ns` (and its process group), waits until the namespace is empty. */
async function killNamespacePids(ns: string): Promise<number[]> {
  const found = new Set<number>();
  // Bounded: a fork bomb in a namespace would otherwise keep us here forever.
  for (let round = 0; round < 20; round++) {
    const pids = await namespacePids(ns);
    if (pids.length === 0) return [...found];
    for (const pid of pids) {
      found.add(pid);
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    }
    await waitFor(async () => pids.every((p) => !pidAlive(p)), { timeoutMs: 2000, intervalMs: 20, what: `pids in ${ns} to exit` }).catch(() => {});
  }
  const left = await namespacePids(ns);
  if (left.length > 0) throw new Error(`processes ${left.join(' ')} in ${ns} survived SIGKILL`);
  return [...found];
}

/**
 * Removes what a crashed run with the same lab name left: namespaces, their processes, temp dirs
 * (including ones kept with WEFT_LAB_KEEP=1). Only called while holding the name's lock, so nothing
 * under the name can belong to a live run.
 */
async function sweepStale(name: string): Promise<void> {
  const prefix = nsPrefix(name);
  const stale = (await listNamespaces()).filter((n) => n.startsWith(prefix));
  if (stale.length > 0) process.stderr.write(`weft lab ${name}: removing stale namespaces from an earlier run: ${stale.join(' ')}\n`);
  for (const ns of stale) {
    await killNamespacePids(ns);
    await execOkIn(null, 'ip', ['netns', 'delete', ns], { timeoutMs: 10_000 });
  }
  for (const d of readdirSync(tmpdir())) {
    if (d.startsWith(`weft-lab-${name}-`)) rmSync(join(tmpdir(), d), { recursive: true, force: true });
  }
}
