/** One lab host: a network namespace with a veth on the lab LAN. */
import { join } from 'node:path';
import { execIn, execOkIn, type ExecOptions, type ExecResult } from './exec.js';
import { LabProcess, type SpawnOptions } from './process.js';

export interface PingOptions {
  /** Echo requests to send. Default 1. */
  count?: number;
  /** Whole-run deadline (ping -w). Default 2 s + 0.2 s per packet. */
  timeoutMs?: number;
  /** Between requests. Default 200 ms (the smallest a non-root user may ask for; we are root anyway). */
  intervalMs?: number;
  /** Per-reply wait (ping -W). Default 1000 ms. */
  replyTimeoutMs?: number;
}

export interface PingResult {
  /** At least one reply. */
  ok: boolean;
  sent: number;
  received: number;
  /** 0..100. */
  lossPct: number;
  /** Null when nothing came back. */
  avgRttMs: number | null;
  output: string;
}

/** What a host needs from its lab; keeps Host free of Lab's bookkeeping. */
export interface HostOwner {
  readonly name: string;
  readonly tmpDir: string;
  /** Throws once the lab is cleaned up. */
  assertOpen(what: string): void;
  adopt(p: LabProcess): void;
  logPath(host: string, stem: string): string;
}

export class Host {
  constructor(
    private readonly owner: HostOwner,
    /** Lab-unique name, e.g. "server", "a". */
    readonly name: string,
    /** 0-based position in the lab's host list. */
    readonly index: number,
    /** Network namespace name (`ip netns`). */
    readonly ns: string,
    /** Address on the lab LAN (eth0) until a router takes the host (see `ip`). */
    private address: string,
  ) {}

  /**
   * The host's address on eth0: on the lab LAN, or on the inside network of the router it sits
   * behind (nat.ts moves hosts; this follows).
   */
  get ip(): string {
    return this.address;
  }

  /** @internal nat.ts, when it re-plugs eth0 into another network. */
  setAddress(ip: string): void {
    this.address = ip;
  }

  exec(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return execIn(this.ns, cmd, args, opts);
  }

  /** Rejects with `ExecError` (command, exit status, output) unless the command exits 0. */
  execOk(cmd: string, args: readonly string[] = [], opts?: ExecOptions): Promise<ExecResult> {
    return execOkIn(this.ns, cmd, args, opts);
  }

  /** Starts a tracked long-running process in this host; `lab.cleanup()` stops it. */
  spawn(cmd: string, args: readonly string[] = [], opts: SpawnOptions = {}): LabProcess {
    const stem = opts.logName ?? cmd.split('/').pop()!;
    this.owner.assertOpen(`start ${this.name}/${stem}`);
    const p = new LabProcess(`${this.name}/${stem}`, this.ns, [cmd, ...args], this.owner.logPath(this.name, stem), opts);
    this.owner.adopt(p);
    return p;
  }

  async ping(target: string, opts: PingOptions = {}): Promise<PingResult> {
    const count = opts.count ?? 1;
    const interval = opts.intervalMs ?? 200;
    const deadlineMs = opts.timeoutMs ?? 2000 + count * interval;
    const args = [
      '-n',
      '-q',
      '-c', String(count),
      '-i', String(interval / 1000),
      '-W', String((opts.replyTimeoutMs ?? 1000) / 1000),
      '-w', String(Math.max(1, Math.ceil(deadlineMs / 1000))),
      target,
    ];
    const r = await this.exec('ping', args, { timeoutMs: deadlineMs + 2000 });
    return parsePing(r.stdout + r.stderr);
  }

  /**
   * A WireGuard interface name unique on this machine: wireguard-go's UAPI socket
   * (/var/run/wireguard/NAME.sock) is shared by every namespace, so names must not repeat across
   * hosts or concurrently running labs. `prefix + lab name + host letter`, e.g. "wftl1b".
   */
  ifname(prefix: string): string {
    const name = `${prefix}${this.owner.name}${String.fromCharCode(97 + this.index)}`;
    if (name.length > 15) throw new Error(`interface name ${name} is longer than 15 characters; use a shorter prefix or lab name`);
    return name;
  }

  /** A path in the lab's per-run temp dir, namespaced by host. */
  tmpPath(...parts: string[]): string {
    return join(this.owner.tmpDir, this.name, ...parts);
  }
}

export function parsePing(output: string): PingResult {
  const m = output.match(/(\d+) packets transmitted, (\d+) (?:packets )?received/);
  const sent = m ? Number(m[1]) : 0;
  const received = m ? Number(m[2]) : 0;
  const rtt = output.match(/= [\d.]+\/([\d.]+)\/[\d.]+/);
  return {
    ok: received > 0,
    sent,
    received,
    lossPct: sent === 0 ? 100 : Math.round((100 * (sent - received)) / sent),
    avgRttMs: rtt ? Number(rtt[1]) : null,
    output: output.trim(),
  };
}
