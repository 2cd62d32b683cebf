import { type ChildProcessWithoutNullStreams, spawn, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface, type Interface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { lockDataDir, LOCK_NAME } from '../src/data-dir-lock.js';
import { DbError } from '../src/errors.js';

const racerScript = fileURLToPath(new URL('./fixtures/lock-racer.ts', import.meta.url));

/** A lock-racer child process: send a command line, read its one-line answer. */
class Racer {
  readonly proc: ChildProcessWithoutNullStreams;
  private readonly lines: Interface;
  private readonly queue: string[] = [];
  private waiting: ((line: string) => void) | null = null;
  private fail: (err: Error) => void = () => {};

  constructor() {
    this.proc = spawn(process.execPath, ['--import', 'tsx', racerScript], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.lines = createInterface({ input: this.proc.stdout });
    this.proc.on('exit', (code) => this.waiting && this.fail(new Error(`lock racer exited (${code})`)));
    this.lines.on('line', (l) => {
      if (this.waiting) {
        const w = this.waiting;
        this.waiting = null;
        w(l);
      } else this.queue.push(l);
    });
  }

  ask(command: string): Promise<string> {
    this.proc.stdin.write(command + '\n');
    const queued = this.queue.shift();
    if (queued !== undefined) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      this.waiting = resolve;
      this.fail = reject;
    });
  }

  stop(): Promise<void> {
    if (this.proc.exitCode !== null) return Promise.resolve();
    return new Promise((resolve) => {
      this.proc.once('exit', () => resolve());
      this.proc.kill('SIGKILL');
    });
  }
}

let root: string;
let racers: Racer[] = [];
/** A lock as a process that was killed while holding it leaves it: the data dir it was in. */
let killedHolderDir: string;
/** A pid no process has (one that ran and exited). */
let deadPid: number;

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'weft-lock-test-'));
  racers = [new Racer(), new Racer()];
  deadPid = spawnSync(process.execPath, ['-e', '0'], { stdio: 'ignore' }).pid!;
  killedHolderDir = join(root, 'killed-holder');
  mkdirSync(killedHolderDir, { mode: 0o700 });
  const holder = new Racer();
  expect(await holder.ask(`go ${killedHolderDir} 0`)).toBe('won');
  await holder.stop(); // SIGKILL: no release ran
  expect(readdirSync(join(killedHolderDir, LOCK_NAME))).toHaveLength(1);
}, 60_000);

afterAll(async () => {
  await Promise.all(racers.map((r) => r.stop()));
  rmSync(root, { recursive: true, force: true });
});

function freshDir(name: string): string {
  const dir = join(root, name);
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

describe('data directory lock', () => {
  it('two processes started together on a stale lock: exactly one takes it, every round', async () => {
    const rounds = 100;
    for (let round = 0; round < rounds; round++) {
      const dir = freshDir(`race-${round}`);
      // Alternate the two kinds of stale lock: one left by a killed holder, and an older version's pid file.
      if (round % 2 === 0) cpSync(join(killedHolderDir, LOCK_NAME), join(dir, LOCK_NAME), { recursive: true });
      else writeFileSync(join(dir, LOCK_NAME), `${deadPid}\n`);
      const at = Date.now() + 15;
      const answers = await Promise.all(racers.map((r) => r.ask(`go ${dir} ${at}`)));
      expect(answers.filter((a) => a === 'won'), `round ${round}: ${answers.join(', ')}`).toHaveLength(1);
      expect(answers.filter((a) => a === 'lost DATA_DIR_IN_USE'), `round ${round}: ${answers.join(', ')}`).toHaveLength(1);
      await Promise.all(racers.map((r) => r.ask('release')));
      expect(readdirSync(dir)).toEqual([]);
    }
  }, 30_000);

  it('never displaces a live holder', async () => {
    const dir = freshDir('live');
    const [holder] = racers as [Racer];
    expect(await holder.ask(`go ${dir} 0`)).toBe('won');
    const before = readdirSync(join(dir, LOCK_NAME));
    for (let i = 0; i < 3; i++) {
      const err = (() => {
        try {
          lockDataDir(dir)();
          return null;
        } catch (e) {
          return e;
        }
      })();
      expect(err).toBeInstanceOf(DbError);
      expect((err as DbError).code).toBe('DATA_DIR_IN_USE');
      expect((err as DbError).message).toContain(`in use by process ${holder.proc.pid}`);
    }
    expect(readdirSync(join(dir, LOCK_NAME))).toEqual(before);
    expect(await holder.ask('release')).toBe('released');
    lockDataDir(dir)();
  });

  it('takes over a lock whose pid now belongs to an unrelated process', async () => {
    const dir = freshDir('reused');
    cpSync(join(killedHolderDir, LOCK_NAME), join(dir, LOCK_NAME), { recursive: true });
    const [ownerFile] = readdirSync(join(dir, LOCK_NAME));
    const path = join(dir, LOCK_NAME, ownerFile!);
    // The dead holder's pid handed to a live process that is not a server: our own parent.
    const owner = JSON.parse(readFileSync(path, 'utf8')) as { pid: number };
    writeFileSync(path, JSON.stringify({ ...owner, pid: process.ppid }));
    const release = lockDataDir(dir);
    expect(readdirSync(join(dir, LOCK_NAME))).not.toContain(ownerFile);
    release();
  });

  it('refuses a second lock in the same process until the first is released', () => {
    const dir = freshDir('same-process');
    const release = lockDataDir(dir);
    expect(() => lockDataDir(dir)).toThrow(/in use by this process/);
    release();
    release(); // twice is harmless
    expect(existsSync(join(dir, LOCK_NAME))).toBe(false);
    lockDataDir(dir)();
  });

  it('is owner-only', () => {
    const dir = freshDir('modes');
    const release = lockDataDir(dir);
    try {
      const lock = join(dir, LOCK_NAME);
      expect(statSync(lock).mode & 0o777).toBe(0o700);
      for (const f of readdirSync(lock)) expect(statSync(join(lock, f)).mode & 0o777).toBe(0o600);
    } finally {
      release();
    }
  });
});
