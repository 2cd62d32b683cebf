/** Running `ip`/`wg`, optionally inside a network namespace, with errors that say what failed. */
import { execFile } from 'node:child_process';
import { WgError } from './errors.js';

export interface RunOptions {
  /** Run inside this network namespace (`ip netns exec NS ...`). */
  netns?: string;
  /** Written to the command's stdin (e.g. the script of `ip -batch -`); absent = no stdin. */
  input?: string;
}

export type Runner = (argv: string[], input?: string) => Promise<string>;

/** argv prefixed for a namespace, if any. */
export function inNetns(argv: string[], netns?: string): string[] {
  return netns ? ['ip', 'netns', 'exec', netns, ...argv] : argv;
}

export function run(argv: string[], opts: RunOptions = {}): Promise<string> {
  const full = inNetns(argv, opts.netns);
  return new Promise((resolve, reject) => {
    const child = execFile(full[0]!, full.slice(1), { timeout: 15_000, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (!err) return resolve(stdout);
      const e = err as NodeJS.ErrnoException;
      const shown = argv.join(' ');
      if (e.code === 'ENOENT') {
        return reject(new WgError('binary_missing', `${full[0]} not found (install iproute2 / wireguard-tools)`, { cause: err }));
      }
      reject(new WgError('command_failed', `\`${shown}\` failed: ${stderr.trim() || e.message}`, {
        cause: err, fields: { argv: full, stderr: stderr.trim(), netns: opts.netns },
      }));
    });
    if (opts.input !== undefined) {
      child.stdin?.on('error', () => undefined); // a command that exits early is reported above
      child.stdin?.end(opts.input);
    } else {
      child.stdin?.end();
    }
  });
}

/** A Runner bound to a namespace. */
export function runner(netns?: string): Runner {
  return (argv, input) => run(argv, { ...(netns ? { netns } : {}), ...(input !== undefined ? { input } : {}) });
}
