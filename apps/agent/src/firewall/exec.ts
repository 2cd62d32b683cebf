/** Running nft and conntrack: exit status and output, never a throw for a non-zero exit. */
import { execFile } from 'node:child_process';

export interface CommandResult {
  /** null when the command could not run (missing binary: `missing`) or was killed. */
  code: number | null;
  stdout: string;
  stderr: string;
  /** The binary was not found on PATH. */
  missing: boolean;
}

export type CommandRunner = (argv: string[], input?: string) => Promise<CommandResult>;

/** Big enough for `nft -f -` with tens of thousands of addresses on a loaded machine. */
const TIMEOUT_MS = 15_000;

export const runCommand: CommandRunner = (argv, input) =>
  new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: TIMEOUT_MS, maxBuffer: 64 << 20 }, (err, stdout, stderr) => {
      const e = err as (NodeJS.ErrnoException & { code?: unknown }) | null;
      if (e && e.code === 'ENOENT') return resolve({ code: null, stdout: '', stderr: `${argv[0]} not found`, missing: true });
      resolve({ code: e ? (typeof e.code === 'number' ? e.code : null) : 0, stdout, stderr, missing: false });
    });
    child.stdin?.on('error', () => undefined); // a command that exits early is reported above
    child.stdin?.end(input);
  });
