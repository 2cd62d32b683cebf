/**
 * bench:stun's load generator: bench/lib/stun-load.c (what it sends and checks is described
 * there), compiled with gcc into a temp dir once per run and run as a child process per round.
 * In C with recvmmsg/sendmmsg so that the generator is not what limits the count: the Node.js one
 * it replaces was, every server landing at 25-31k/s on this machine. The same generator measures
 * every server, and it reports its own CPU so a reader can see it had room to spare.
 */
import { execFile, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';

export interface LoadOptions {
  host: string;
  port: number;
  sockets: number;
  window: number;
  durationMs: number;
  /** A request unanswered this long counts as lost and its slot sends a new one. */
  timeoutMs: number;
}

export interface LoadResult {
  sent: number;
  received: number;
  lost: number;
  seconds: number;
  responsesPerSecond: number;
  /** The first response on each socket decoded in full and carried that socket's own address. */
  verified: boolean;
  /** CPU seconds the generator used (user + system): near `seconds` would mean it was the bottleneck. */
  generatorCpuSeconds: number;
}

const SOURCE = resolve(import.meta.dirname, 'stun-load.c');
let binary: string | undefined;

/** The compiled generator (gcc; scripts/install-test-deps.sh installs it). */
function generator(): string {
  if (binary) return binary;
  const dir = mkdtempSync(join(tmpdir(), 'weft-stun-load-'));
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }));
  const out = join(dir, 'stun-load');
  const r = spawnSync('gcc', ['-O2', '-Wall', '-Wextra', '-Werror', '-o', out, SOURCE], { encoding: 'utf8' });
  if (r.error) throw new Error(`gcc not found: bench:stun compiles its load generator (apt-get install gcc libc6-dev, or bash scripts/install-test-deps.sh)`);
  if (r.status !== 0) throw new Error(`gcc could not compile ${SOURCE}:\n${r.stderr}`);
  return (binary = out);
}

export function runLoad(o: LoadOptions): Promise<LoadResult> {
  const args = [o.host, o.port, o.sockets, o.window, o.durationMs, o.timeoutMs].map(String);
  return new Promise((ok, fail) => {
    execFile(generator(), args, { encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) return fail(new Error(`stun-load ${args.join(' ')}: ${err.message}\n${stderr}`));
      ok(JSON.parse(stdout) as LoadResult);
    });
  });
}
