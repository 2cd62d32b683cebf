/** `weft status`, `weft down`, `weft logout`: one request each. */
import type { Parsed } from '../args.js';
import { ExitCode, statusExitCode } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';
import { formatStatus } from '../status-format.js';
import type { Status } from '../../status.js';

export async function status(args: Parsed, client: LocalClient): Promise<number> {
  const s = await client.call<Status>('GET', '/v1/status');
  process.stdout.write(args.json ? JSON.stringify(s, null, 2) + '\n' : formatStatus(s));
  return statusExitCode(s.state);
}

export async function down(args: Parsed, client: LocalClient): Promise<number> {
  const s = await client.call<Status>('POST', '/v1/down', {});
  process.stdout.write(args.json ? JSON.stringify(s, null, 2) + '\n' : 'weft is down; the node stays registered (weft up brings it back)\n');
  return ExitCode.Ok;
}

export async function logout(args: Parsed, client: LocalClient): Promise<number> {
  const before = await client.call<Status>('GET', '/v1/status');
  const r = await client.call<{ serverNotified: boolean; serverError?: string | null; status: Status }>('POST', '/v1/logout', {});
  if (args.json) process.stdout.write(JSON.stringify(r, null, 2) + '\n');
  else {
    process.stdout.write(`logged out: ${r.serverNotified ? 'the control server removed this node; ' : ''}interface removed, keys and state deleted\n`);
    if (!r.serverNotified) {
      const id = before.self?.id ?? 'ID';
      process.stdout.write(`the control server was not told (${r.serverError ?? 'unknown reason'}); an admin can delete the node with: weft-server nodes delete ${id}\n`);
    }
  }
  return ExitCode.Ok;
}
