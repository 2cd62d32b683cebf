/** A stand-in for nft and conntrack in unit tests: records what was run, answers as told. */
import type { CommandResult, CommandRunner } from '../../../src/firewall/exec.js';

export class FakeRunner {
  calls: { argv: string[]; input?: string }[] = [];
  /** Answer for `nft`; default success. */
  nft: () => CommandResult = () => ({ code: 0, stdout: '', stderr: '', missing: false });
  /** Answer for `nft list table inet weft`: default "no such table". */
  nftList: () => CommandResult = () => ({ code: 1, stdout: '', stderr: 'Error: No such file or directory', missing: false });
  conntrackList: Record<'ipv4' | 'ipv6', string> = { ipv4: '', ipv6: '' };

  run: CommandRunner = async (argv, input) => {
    this.calls.push({ argv, ...(input !== undefined && { input }) });
    if (argv[0] === 'nft' && argv[1] === 'list') return this.nftList();
    if (argv[0] === 'nft') return this.nft();
    if (argv[0] === 'conntrack' && argv[1] === '-L') return { code: 0, stdout: this.conntrackList[argv[3] as 'ipv4' | 'ipv6'], stderr: '', missing: false };
    return { code: 0, stdout: '', stderr: '', missing: false };
  };

  get nftScripts(): string[] {
    return this.calls.filter((c) => c.argv[0] === 'nft' && c.argv[1] === '-f').map((c) => c.input ?? '');
  }

  get deletions(): string[] {
    return this.calls.filter((c) => c.argv[0] === 'conntrack' && c.argv[1] === '-D').map((c) => c.argv.slice(2).join(' '));
  }
}

export const failing = (stderr: string): CommandResult => ({ code: 1, stdout: '', stderr, missing: false });
export const missing = (): CommandResult => ({ code: null, stdout: '', stderr: 'nft not found', missing: true });
