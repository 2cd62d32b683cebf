/** `weft doctor [--json]`: the daemon runs the checks (src/doctor/); exit 20 on any FAIL. */
import type { Parsed } from '../args.js';
import { ExitCode } from '../exit-codes.js';
import type { LocalClient } from '../local-client.js';
import { formatReport, type DoctorReport } from '../../doctor/checks.js';

export async function doctor(args: Parsed, client: LocalClient): Promise<number> {
  const r = await client.call<DoctorReport>('GET', '/v1/doctor');
  process.stdout.write(args.json ? JSON.stringify(r, null, 2) + '\n' : formatReport(r));
  return r.ok ? ExitCode.Ok : ExitCode.DoctorFailed;
}
