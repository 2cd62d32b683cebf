/** `weft up` and `weft login`: ask the daemon to join, show the login URL, wait until up. */
import type { Parsed } from '../args.js';
import { CliError, ExitCode, exitCodeFor, hintFor } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';
import { Spinner } from '../spinner.js';
import type { Status } from '../../status.js';

export async function join(args: Parsed, client: LocalClient): Promise<number> {
  const body = { server: args.server, authKey: args.authKey, hostname: args.hostname, caFile: args.caFile };
  const spinner = new Spinner();
  const abort = new AbortController();
  const timer = args.timeoutS ? setTimeout(() => abort.abort(), args.timeoutS * 1000) : undefined;
  let result: { status: Status } | { code: string; message: string } | undefined;
  try {
    await client.stream('/v1/up', body, (e) => {
      if (e.type === 'login') {
        spinner.stop();
        if (args.json) process.stdout.write(JSON.stringify(e) + '\n');
        else process.stdout.write(loginText(e));
        spinner.start(e.approval === 'admin' ? 'waiting for an admin to approve this device' : 'waiting for approval');
      } else if (e.type === 'registered') {
        spinner.stop();
        spinner.start('bringing the interface up');
      } else if (e.type === 'up') {
        result = { status: e.status as Status };
      } else if (e.type === 'error') {
        result = { code: String(e.code), message: String(e.message) };
      }
    }, abort.signal);
  } catch (err) {
    if ((err as Error).name === 'AbortError') {
      throw new CliError(`not up after ${args.timeoutS}s`, ExitCode.Generic, 'See weft status, and the daemon log');
    }
    throw err;
  } finally {
    clearTimeout(timer);
    spinner.stop();
  }
  if (!result) throw new CliError('the daemon ended the join without an answer', ExitCode.Generic, 'See the daemon log');
  if ('code' in result) throw new CliError(result.message, exitCodeFor(result.code), hintFor(result.code));
  const s = result.status;
  // On stderr too with --json, where a person running it in a script still sees it.
  if (s.controlChannel?.warning) process.stderr.write(`\nWARNING: ${s.controlChannel.warning}\n\n`);
  if (args.json) process.stdout.write(JSON.stringify(s, null, 2) + '\n');
  else if (s.self) {
    process.stdout.write(`${s.self.name} is up: ${s.self.ipv4} ${s.self.ipv6}, ${s.peers.length} peer${s.peers.length === 1 ? '' : 's'}${s.online ? '' : ' (control server not reachable: running on the last netmap)'}\n`);
  }
  return ExitCode.Ok;
}

/** What `weft up` prints while it waits: where to approve, or that an admin must. */
export function loginText(e: { url?: unknown; code?: unknown; approval?: unknown; fingerprint?: unknown }): string {
  if (e.approval === 'admin') {
    return `\nThis device waits for an admin to approve it: this network requires approval of new devices.\n` +
      `An admin approves it on the Pending devices page (${String(e.url)})\nor runs: weft-server nodes approve ${String(e.code)}\n\n`;
  }
  const fp = typeof e.fingerprint === 'string' ? `\nKey fingerprint: ${e.fingerprint} (the page must show the same)` : '';
  return `\nTo approve, open ${String(e.url)}${fp}\nor ask an admin to run: weft-server nodes approve ${String(e.code)}\n\n`;
}
