/**
 * Userspace backend: spawns `wireguard-go -f NAME` (optionally inside a network namespace),
 * programs it over its UAPI socket and supervises it. If wireguard-go dies unexpectedly it is
 * restarted with backoff and the last interface configuration and peer set are re-applied.
 * Packets never pass through Node.js: wireguard-go owns the TUN device and the UDP socket.
 *
 * A wireguard-go that outlived its daemon (kill -9) is adopted, not replaced: its UAPI socket
 * answers and the interface exists here, so the new daemon finds its pid, programs it as usual
 * (diffs keep every unchanged peer's session up) and supervises it by polling.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { accessSync, closeSync, constants, mkdirSync, openSync, readFileSync, rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import type { OpenOptions } from './device.js';
import { WgError } from './errors.js';
import { inNetns, runner } from './exec.js';
import type { Runner } from './exec.js';
import type { Driver, Log } from './managed-device.js';
import { ManagedDevice } from './managed-device.js';
import type { PeerOp } from './peer-diff.js';
import { linkDelete, linkExists } from './routes.js';
import { processAlive, processName, unixSocketOwner } from './socket-owner.js';
import { UAPI_SOCKET_DIR, UapiClient, uapiSocketPath } from './uapi.js';
import type { DeviceState, InterfaceSet } from './uapi.js';

/** How long wireguard-go may take to open its UAPI socket. */
export const START_TIMEOUT_MS = 10_000;
/** How long it gets to exit after SIGTERM before SIGKILL. */
export const STOP_TIMEOUT_MS = 3_000;
/** Restart backoff: first delay, cap, and how long a run must last to reset it. */
export const RESTART_MIN_MS = 100;
export const RESTART_MAX_MS = 5_000;
export const RESTART_RESET_AFTER_MS = 10_000;
/** Linux IFNAMSIZ - 1. */
export const MAX_IFNAME = 15;
/** An adopted wireguard-go is not our child, so its exit is noticed by polling this often. */
export const ADOPTED_POLL_MS = 1_000;

export interface UserspaceOptions {
  /** Run wireguard-go inside this network namespace (tests); the UAPI socket is shared anyway. */
  netns?: string;
  /** wireguard-go binary; default "wireguard-go" from PATH. */
  wireguardGo?: string;
  /** UAPI socket directory; default /var/run/wireguard (where wireguard-go puts it). */
  socketDir?: string;
}

export function findBinary(bin: string): string | null {
  const candidates = bin.includes('/') ? [bin] : (process.env.PATH ?? '').split(delimiter).map((d) => join(d, bin));
  for (const c of candidates) {
    try {
      accessSync(c, constants.X_OK);
      return c;
    } catch { /* next */ }
  }
  return null;
}

export function checkInterfaceName(name: string): void {
  if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name) || name === '.' || name === '..') {
    throw new TypeError(`interface name must be 1-${MAX_IFNAME} characters of [A-Za-z0-9_.-], got ${JSON.stringify(name)}`);
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

export class UserspaceDriver implements Driver {
  readonly backend = 'userspace' as const;
  readonly runner: Runner;
  private readonly uapi: UapiClient;
  private readonly binary: string;
  private child: ChildProcess | null = null;
  /** A wireguard-go left running by an earlier daemon, now ours to program, watch and stop. */
  private adopted: { pid: number; timer: NodeJS.Timeout } | null = null;
  private startedAt = 0;
  private restarts = 0;
  private stopping = false;
  private spawnError = '';
  /** wireguard-go's stdout and stderr, truncated at each start. */
  readonly logPath: string;
  /** Called after an unexpected exit, once the backoff delay has passed. */
  onCrash: () => void = () => undefined;

  constructor(readonly name: string, private readonly opts: UserspaceOptions, private readonly log: Log) {
    checkInterfaceName(name);
    const bin = findBinary(opts.wireguardGo ?? 'wireguard-go');
    if (!bin) {
      throw new WgError('binary_missing', 'wireguard-go not found: install it (apt-get install wireguard-go) or pass wireguardGo');
    }
    this.binary = bin;
    this.runner = runner(opts.netns);
    this.uapi = new UapiClient(uapiSocketPath(name, opts.socketDir));
    this.logPath = join(opts.socketDir ?? UAPI_SOCKET_DIR, `${name}.log`);
  }

  /** The end of wireguard-go's output (and a spawn error), for messages. */
  private output(): string {
    let text = '';
    try {
      text = readFileSync(this.logPath, 'utf8').slice(-4096);
    } catch { /* none yet */ }
    return `${text}${this.spawnError}`.trim();
  }

  /** PID of the running wireguard-go (tests use it to simulate a crash). */
  get pid(): number | null {
    return this.child?.pid ?? this.adopted?.pid ?? null;
  }

  /** True when a new wireguard-go was started (empty config); false when one runs (ours or adopted). */
  async ensure(): Promise<boolean> {
    if (this.child || this.adopted) return false;
    if (await this.uapi.get().then(() => true, () => false)) {
      await this.adopt();
      return false;
    }
    await this.start();
    return true;
  }

  /**
   * The UAPI socket answers before we started anything: an earlier daemon's wireguard-go (killed
   * with -9, it could not stop it). Adopted when the interface exists in our namespace and the
   * socket's owner is a wireguard-go; otherwise the name is someone else's.
   */
  private async adopt(): Promise<void> {
    const clash = (why: string) => new WgError('interface_exists',
      `a wireguard-go for ${this.name} is already running (${this.uapi.socketPath}) and cannot be adopted: ${why}`);
    if (!(await linkExists(this.runner, this.name))) throw clash(`no interface ${this.name} in this network namespace`);
    const pid = await unixSocketOwner(this.runner, this.uapi.socketPath);
    if (pid === null) throw clash('no process owns the socket');
    const comm = await processName(pid);
    if (comm === null || !comm.startsWith('wireguard-go')) throw clash(`the socket belongs to pid ${pid} (${comm ?? 'gone'})`);
    const timer = setInterval(() => {
      if (processAlive(pid)) return;
      clearInterval(timer);
      if (this.adopted?.pid !== pid) return;
      this.adopted = null;
      if (this.stopping) return;
      this.log('warn', 'adopted wireguard-go exited; restarting', { name: this.name, pid });
      this.scheduleRestart();
    }, ADOPTED_POLL_MS);
    timer.unref();
    this.adopted = { pid, timer };
    this.startedAt = Date.now();
    this.log('info', 'adopted running wireguard-go', { name: this.name, pid, netns: this.opts.netns });
  }

  private async start(): Promise<void> {
    const argv = inNetns([this.binary, '-f', this.name], this.opts.netns);
    this.spawnError = '';
    // Output goes to a file, not a pipe: a Go program writing to a pipe whose reader died gets
    // SIGPIPE, so a wireguard-go that outlives a killed daemon would die at its next log line.
    mkdirSync(dirname(this.logPath), { recursive: true, mode: 0o755 });
    const logFd = openSync(this.logPath, 'w', 0o600);
    let child: ChildProcess;
    try {
      child = spawn(argv[0]!, argv.slice(1), {
        stdio: ['ignore', logFd, logFd],
        env: { ...process.env, LOG_LEVEL: process.env.WEFT_WG_LOG_LEVEL ?? 'error' },
      });
    } finally {
      closeSync(logFd);
    }
    let exited = false;
    child.on('error', (err) => { this.spawnError = String(err); });
    let ready = false;
    child.on('exit', (code, signal) => {
      exited = true;
      if (this.child === child) this.child = null;
      if (this.stopping || !ready) return; // a failed start is reported by start() itself
      this.log('warn', 'wireguard-go exited unexpectedly; restarting', {
        name: this.name, code, signal, output: this.output().slice(-500),
      });
      this.scheduleRestart();
    });
    this.child = child;
    this.startedAt = Date.now();

    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      if (exited) {
        throw new WgError('userspace_start_failed', `wireguard-go ${this.name} exited at start: ${this.output() || 'no output'}`);
      }
      if (await this.uapi.get().then(() => true, () => false)) break;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new WgError('userspace_start_failed', `wireguard-go ${this.name} did not open ${this.uapi.socketPath} within ${START_TIMEOUT_MS} ms`);
      }
      await sleep(20);
    }
    ready = true;
    this.log('info', 'wireguard-go started', { name: this.name, pid: child.pid, netns: this.opts.netns });
  }

  /** Calls onCrash after an exponential backoff (reset once a run lasted long enough). */
  scheduleRestart(): void {
    if (this.stopping) return;
    if (Date.now() - this.startedAt > RESTART_RESET_AFTER_MS) this.restarts = 0;
    const delay = Math.min(RESTART_MAX_MS, RESTART_MIN_MS * 2 ** this.restarts++);
    setTimeout(() => { if (!this.stopping) this.onCrash(); }, delay).unref();
  }

  read(): Promise<DeviceState> {
    return this.uapi.get();
  }

  write(iface: InterfaceSet, ops: PeerOp[]): Promise<void> {
    return this.uapi.set(iface, ops);
  }

  async destroy(): Promise<void> {
    this.stopping = true;
    const adopted = this.adopted;
    this.adopted = null;
    if (adopted) {
      clearInterval(adopted.timer);
      await stopPid(adopted.pid);
    }
    const child = this.child;
    if (child && child.exitCode === null && child.signalCode === null) {
      const exited = new Promise<void>((r) => child.once('exit', () => r()));
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    this.child = null;
    // wireguard-go removes its TUN on a clean exit; after a SIGKILL the kernel does. Belt and braces.
    await linkDelete(this.runner, this.name);
    rmSync(this.logPath, { force: true });
  }
}

/** SIGTERM, then SIGKILL after STOP_TIMEOUT_MS, to a process that is not our child. */
async function stopPid(pid: number): Promise<void> {
  const signal = (s: NodeJS.Signals) => { try { process.kill(pid, s); } catch { /* gone */ } };
  signal('SIGTERM');
  const deadline = Date.now() + STOP_TIMEOUT_MS;
  while (processAlive(pid)) {
    if (Date.now() > deadline) {
      signal('SIGKILL');
      break;
    }
    await sleep(20);
  }
}

/** A userspace device whose supervisor re-applies config after a wireguard-go crash. */
export class UserspaceDevice extends ManagedDevice {
  constructor(private readonly wgDriver: UserspaceDriver, log: Log) {
    super(wgDriver, log);
    wgDriver.onCrash = () => {
      this.recover().catch((err: unknown) => {
        this.log('error', 'restarting wireguard-go failed; will retry', { name: this.name, error: String(err) });
        wgDriver.scheduleRestart();
      });
    };
  }

  /** PID of the wireguard-go process currently serving this device, if running. */
  get pid(): number | null {
    return this.wgDriver.pid;
  }
}

export async function openUserspace(opts: OpenOptions): Promise<UserspaceDevice> {
  const log: Log = opts.log ?? (() => undefined);
  const driver = new UserspaceDriver(opts.name, {
    ...(opts.netns ? { netns: opts.netns } : {}),
    ...(opts.wireguardGo ? { wireguardGo: opts.wireguardGo } : {}),
  }, log);
  const device = new UserspaceDevice(driver, log);
  await device.recover(); // starts wireguard-go now so a missing binary or a name clash fails here
  return device;
}
