/** `weft metrics [--json]`: the daemon's own metrics from the local socket (src/metrics.ts). */
import type { Parsed } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';

export async function metrics(args: Parsed, client: LocalClient): Promise<number> {
  if (args.json) process.stdout.write(JSON.stringify(await client.call('GET', '/v1/metrics?format=json'), null, 2) + '\n');
  else process.stdout.write(await client.text('/v1/metrics'));
  return ExitCode.Ok;
}
