/**
 * Last-resort cleanup: a lab still open when the process exits or is told to stop is torn down
 * synchronously (exit) or asynchronously with a time bound (signals). Test hooks (afterAll) are the
 * normal path; this covers crashes, Ctrl-C and forgotten cleanups. A SIGKILL'd run leaves its lab
 * behind, and the next `Lab.create` with the same name sweeps it.
 */

export interface Cleanable {
  readonly name: string;
  cleanup(): Promise<unknown>;
  cleanupSync(): void;
}

const open = new Set<Cleanable>();
let installed = false;

export function track(lab: Cleanable): void {
  open.add(lab);
  install();
}

export function untrack(lab: Cleanable): void {
  open.delete(lab);
}

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', () => {
    for (const lab of [...open]) {
      try {
        lab.cleanupSync();
      } catch (err) {
        process.stderr.write(`weft lab ${lab.name}: cleanup at exit failed: ${String(err)}\n`);
      }
    }
  });
  const onSignal = (signal: NodeJS.Signals, n: number) => {
    if (open.size > 0) process.stderr.write(`weft lab: ${signal}, cleaning up ${[...open].map((l) => l.name).join(' ')}\n`);
    const force = setTimeout(() => process.exit(128 + n), 15_000);
    force.unref();
    void Promise.allSettled([...open].map((l) => l.cleanup())).finally(() => process.exit(128 + n));
  };
  process.once('SIGINT', () => onSignal('SIGINT', 2));
  process.once('SIGTERM', () => onSignal('SIGTERM', 15));
  process.once('SIGHUP', () => onSignal('SIGHUP', 1));
}
