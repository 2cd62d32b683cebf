/**
 * A long-running process the lab started (server, agent daemon, wireguard-go, iperf3 -s). It runs in
 * its own process group; stdout and stderr go to one log file and are kept in memory so tests can
 * wait for a line and failures can show the tail.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, type WriteStream } from 'node:fs';
import { killGroup, nsArgv } from './exec.js';
import { sleep } from './wait.js';

export interface SpawnOptions {
  env?: Record<string, string>;
  /** Log file name stem; default the command's base name. */
  logName?: string;
  cwd?: string;
}

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface KillOptions {
  /** First signal, sent to the whole process group. Default SIGTERM. */
  signal?: NodeJS.Signals;
  /** How long to wait before SIGKILL. Default 3000 ms. */
  graceMs?: number;
}

export interface LineMatch {
  line: string;
  match: RegExpMatchArray;
  /** Index in `lines()`, usable as `fromLine` for the next wait. */
  index: number;
}

/** Lines kept in memory for `waitForLine` per process; the log file keeps everything. */
const MAX_LINES = 100_000;

export class LabProcess {
  readonly pid: number;
  /** Resolves when the process exits; never rejects. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | null = null;
  private readonly buf: string[] = [];
  /** The last lines, kept even when `buf` is full. */
  private readonly recent: string[] = [];
  private readonly partial = { stdout: '', stderr: '' };
  private readonly listeners = new Set<() => void>();
  private readonly log: WriteStream;
  private readonly child: ChildProcess;

  constructor(
    /** "host/logName", for messages. */
    readonly name: string,
    readonly ns: string | null,
    readonly argv: string[],
    readonly logPath: string,
    opts: SpawnOptions = {},
  ) {
    this.log = createWriteStream(logPath, { flags: 'a' });
    this.log.write(`# ${new Date().toISOString()} ${nsArgv(ns, argv[0]!, argv.slice(1)).join(' ')}\n`);
    const full = nsArgv(ns, argv[0]!, argv.slice(1));
    this.child = spawn(full[0]!, full.slice(1), {
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, ...opts.env },
      cwd: opts.cwd,
    });
    if (this.child.pid === undefined) {
      // spawn() reports ENOENT asynchronously; fail here with something readable instead.
      throw new Error(`${name}: could not start ${full.join(' ')}`);
    }
    this.pid = this.child.pid;
    this.child.stdout!.on('data', (b: Buffer) => this.onData('stdout', b));
    this.child.stderr!.on('data', (b: Buffer) => this.onData('stderr', b));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (err) => {
        this.append(`# spawn error: ${err.message}`);
        this.setStatus({ code: null, signal: null });
        resolve(this.status!);
      });
      this.child.on('close', (code, signal) => {
        this.flushPartial();
        this.setStatus({ code, signal });
        this.append(`# exited ${code ?? signal}`);
        this.log.end();
        resolve(this.status!);
      });
    });
  }

  get running(): boolean {
    return this.status === null;
  }

  get exitStatus(): ExitStatus | null {
    return this.status;
  }

  /** Every captured line so far (stdout and stderr interleaved as they arrived). */
  lines(): readonly string[] {
    return this.buf;
  }

  output(): string {
    return this.buf.join('\n');
  }

  tail(n = 40): string {
    return this.recent.slice(-n).join('\n');
  }

  /**
   * Resolves with the first line at or after `fromLine` matching `re`. Rejects on timeout or when the
   * process exits without printing one; the error carries the log tail.
   */
  waitForLine(re: RegExp, timeoutMs: number, fromLine = 0): Promise<LineMatch> {
    return new Promise((resolve, reject) => {
      let next = fromLine;
      const check = (): boolean => {
        for (; next < this.buf.length; next++) {
          const m = this.buf[next]!.match(re);
          if (m) {
            done();
            resolve({ line: this.buf[next]!, match: m, index: next });
            return true;
          }
        }
        if (!this.running) {
          done();
          reject(new Error(`${this.name} exited (${this.status!.code ?? this.status!.signal}) without printing ${re}\n${this.tail(20)}`));
          return true;
        }
        return false;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.name}: no line matching ${re} within ${timeoutMs} ms\n${this.tail(20)}`));
      }, timeoutMs);
      const listener = () => void check();
      const done = () => {
        clearTimeout(timer);
        this.listeners.delete(listener);
      };
      this.listeners.add(listener);
      check();
    });
  }

  /** SIGTERM (or `signal`) to the group, SIGKILL after `graceMs`. Idempotent. */
  async kill(opts: KillOptions = {}): Promise<ExitStatus> {
    if (this.running) {
      killGroup(this.pid, opts.signal ?? 'SIGTERM');
      const graceful = await Promise.race([this.exited.then(() => true), sleep(opts.graceMs ?? 3000).then(() => false)]);
      if (!graceful) {
        this.append(`# still running ${opts.graceMs ?? 3000} ms after ${opts.signal ?? 'SIGTERM'}; SIGKILL`);
        killGroup(this.pid, 'SIGKILL');
        await Promise.race([this.exited, sleep(5000)]);
      }
    }
    // Whatever the leader left behind in its group goes too.
    killGroup(this.pid, 'SIGKILL');
    return this.status ?? { code: null, signal: 'SIGKILL' };
  }

  /** For exit hooks, where nothing asynchronous runs any more. */
  killSync(): void {
    killGroup(this.pid, 'SIGKILL');
  }

  private onData(stream: 'stdout' | 'stderr', b: Buffer): void {
    const text = this.partial[stream] + b.toString('utf8');
    const parts = text.split('\n');
    this.partial[stream] = parts.pop()!;
    for (const line of parts) this.append(line);
    if (parts.length > 0) this.notify();
  }

  private flushPartial(): void {
    for (const s of ['stdout', 'stderr'] as const) {
      if (this.partial[s] !== '') {
        this.append(this.partial[s]);
        this.partial[s] = '';
      }
    }
    this.notify();
  }

  private append(line: string): void {
    this.log.write(line + '\n');
    if (this.buf.length < MAX_LINES) this.buf.push(line);
    this.recent.push(line);
    if (this.recent.length > 400) this.recent.splice(0, 200);
  }

  private setStatus(s: ExitStatus): void {
    if (this.status === null) this.status = s;
    this.notify();
  }

  private notify(): void {
    for (const l of [...this.listeners]) l();
  }
}
