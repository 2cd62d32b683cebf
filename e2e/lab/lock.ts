/**
 * One live lab per name on this machine. Several people (and CI) run the e2e tier in the same tree;
 * without a lock, one run's stale-namespace sweep would tear down another run's live lab.
 *
 * The lock is an flock(1) held by a child `cat` reading our pipe: when this process dies for any
 * reason, even SIGKILL, the pipe closes, `cat` exits and the lock is free. Whoever takes the lock
 * next knows that everything under the name is stale.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';

export const LOCK_DIR = '/run/weft-lab';

export class LabLock {
  private constructor(
    private readonly child: ChildProcess,
    readonly path: string,
  ) {}

  static async acquire(name: string, timeoutMs: number): Promise<LabLock> {
    mkdirSync(LOCK_DIR, { recursive: true, mode: 0o700 });
    const path = join(LOCK_DIR, `${name}.lock`);
    const ownerPath = join(LOCK_DIR, `${name}.owner`);
    const secs = Math.max(1, Math.ceil(timeoutMs / 1000));
    const child = spawn('flock', ['-x', '-w', String(secs), path, 'sh', '-c', 'echo locked; exec cat >/dev/null'], {
      detached: true, // a Ctrl-C to our process group must not release the lock before cleanup ran
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let err = '';
    child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
    const got = await new Promise<boolean>((resolve) => {
      child.stdout!.on('data', (b: Buffer) => {
        if (b.toString().includes('locked')) resolve(true);
      });
      child.on('exit', () => resolve(false));
      child.on('error', () => resolve(false));
    });
    if (!got) {
      let owner = 'unknown';
      try {
        owner = readFileSync(ownerPath, 'utf8').trim();
      } catch {
        /* none recorded */
      }
      throw new Error(`lab "${name}" is in use by another run (${owner}); waited ${secs} s for ${path}${err ? `: ${err.trim()}` : ''}`);
    }
    writeFileSync(ownerPath, `pid ${process.pid}: ${process.argv.join(' ')} since ${new Date().toISOString()}\n`);
    // The lock must not keep this process alive; the exit hooks release it.
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr] as (Writable | Readable | null)[]) {
      (s as unknown as { unref?: () => void } | null)?.unref?.();
    }
    return new LabLock(child, path);
  }

  /** Closing the pipe ends `cat`, which releases the flock. Safe in exit hooks. */
  release(): void {
    this.child.stdin?.destroy();
  }
}
