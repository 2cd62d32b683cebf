/** `weft netcheck`: one request to the daemon, which runs the probes (src/netcheck.ts). */
import type { Parsed } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';
import { formatNetcheck } from '../netcheck-format.js';
import { Spinner } from '../spinner.js';
import type { NetcheckReport } from '../../netcheck.js';

export async function netcheck(args: Parsed, client: LocalClient): Promise<number> {
  const spinner = new Spinner(process.stderr);
  if (!args.json) spinner.start('checking the network (STUN to every region)...');
  let r: NetcheckReport;
  try {
    r = await client.call<NetcheckReport>('GET', '/v1/netcheck');
  } finally {
    spinner.stop();
  }
  process.stdout.write(args.json ? JSON.stringify(r, null, 2) + '\n' : formatNetcheck(r));
  return r.udp ? ExitCode.Ok : ExitCode.UdpBlocked;
}
