/**
 * `weft-server doctor [--json] [--data-dir DIR | --socket PATH | --server URL --api-key KEY]`:
 * asks the running server to check itself (GET /api/v1/doctor, admin; src/doctor.ts) and prints
 * each check PASS / WARN / FAIL with what to do. Exit 0 with no FAIL, 1 with any, 3 unreachable.
 */
import { formatServerReport, type ServerDoctorReport } from '../doctor.js';
import { COMMON_BOOL, COMMON_STRING, ExitCode, targetOf } from './admin.js';
import { parseArgs, UsageError } from './args.js';
import { call, ProblemError, ServerUnreachable } from './client.js';

export const DOCTOR_USAGE = [
  'usage: weft-server doctor [--json] [--data-dir DIR | --socket PATH | --server URL --api-key KEY]',
  '',
  'The running server checks itself: database reachable, migrations applied (none missing, none',
  'unknown), the change bus (how far this replica is behind the outbox, in changes and seconds;',
  'Postgres), STUN answering',
  'on loopback, the relay on, the TLS certificate expiry, the clock (NTP, and the database clock on',
  'Postgres). Each check is PASS, WARN or FAIL with what to do. Exits 0 with no FAIL, 1 with any,',
  '3 when the server is not reachable.',
].join('\n');

export async function doctorCommand(argv: string[]): Promise<number> {
  try {
    const p = parseArgs(argv, { string: COMMON_STRING, boolean: COMMON_BOOL });
    if (p.flags.has('help')) {
      process.stdout.write(DOCTOR_USAGE + '\n');
      return ExitCode.Ok;
    }
    if (p.positional.length) throw new UsageError(`unexpected argument "${p.positional[0]}"`);
    const r = await call<ServerDoctorReport>(targetOf(p), 'GET', '/api/v1/doctor');
    process.stdout.write(p.flags.has('json') ? JSON.stringify(r, null, 2) + '\n' : formatServerReport(r));
    return r.ok ? ExitCode.Ok : ExitCode.Refused;
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`weft-server: ${e.message}\n${DOCTOR_USAGE}\n`);
      return ExitCode.Usage;
    }
    if (e instanceof ServerUnreachable) {
      process.stderr.write(`weft-server: FAIL  server: ${e.message}\n      fix: start it (weft-server serve) or pass --data-dir / --server\n`);
      return ExitCode.Unreachable;
    }
    if (e instanceof ProblemError) {
      process.stderr.write(`weft-server: ${e.message}\n`);
      return ExitCode.Refused;
    }
    throw e;
  }
}
