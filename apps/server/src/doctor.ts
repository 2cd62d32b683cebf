/**
 * `weft-server doctor` (and `GET /api/v1/doctor`, admin): what a running replica can check about
 * itself. Each check is PASS / WARN / FAIL and, when not PASS, says what to do (the same shape as
 * the agent's `weft doctor`).
 *
 * - database: reachable (`SELECT 1`), with the round trip;
 * - migrations: every migration this binary ships is applied, and the database has none it does
 *   not know (a newer replica migrated it: upgrade this one);
 * - change bus: Postgres only; how far this replica's outbox follower is behind the outbox head, in
 *   changes and in the age of the oldest change it has not applied (a replica that hears no NOTIFY
 *   and whose catch-up stalls falls behind by time long before it does by count);
 * - STUN: a Binding request to the embedded STUN port on loopback is answered;
 * - relay: the embedded relay is on, and `/api/v1/relay` on this replica's own listener answers a
 *   WebSocket upgrade without a machine token with 401 problem+json (what a client without
 *   credentials gets: the route, its authentication and the upgrade path work, and nothing is
 *   created); with how many clients it has;
 * - TLS: days left on the served certificate;
 * - clock: the database's clock against this process's (Postgres), and systemd's NTP flag.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { readMigrations, shippedMigrationsDir, type PrismaClient } from '@weft/db';
import WebSocket from 'ws';
import { bindingRequest, RELAY_HTTP_PATH } from '@weft/relay';

export type Verdict = 'PASS' | 'WARN' | 'FAIL';
export interface CheckResult { id: string; title: string; status: Verdict; detail: string; fix: string | null }
export interface ServerDoctorReport { version: 1; ok: boolean; checks: CheckResult[] }

export interface DoctorSources {
  prisma: PrismaClient;
  backend: 'pglite' | 'postgres';
  /** Outbox follower position and the outbox head (Postgres); null = no bus (embedded database). */
  bus: { position: () => number; head: () => Promise<number>; oldestAfter?: (position: number) => Promise<{ head: number; ageMs: number | null }> } | null;
  stunPort: number | null;
  relay: { clientCount: number } | null;
  /** This replica's own HTTP(S) listener (what the relay check connects to); null = not listening on TCP. */
  listener: () => { host: string; port: number; tls: boolean } | null;
  tlsNotAfter: () => Date | null;
  migrationsDir?: string;
  /** For tests: what `timedatectl show -p NTPSynchronized --value` says (null = not available). */
  ntpSynchronized?: () => Promise<boolean | null>;
}

/** Outbox entries behind the head before the bus check WARNs / FAILs. */
export const BUS_LAG_WARN = 100;
export const BUS_LAG_FAIL = 10_000;
/**
 * Age of the oldest change this replica has not applied before the bus check WARNs / FAILs. A
 * replica reads on every NOTIFY and at least every CHANGE_CATCH_UP_INTERVAL_MS (1 s), so a change
 * seconds old and still unapplied means it hears neither.
 */
export const BUS_LAG_WARN_S = 10;
export const BUS_LAG_FAIL_S = 60;
export const TLS_WARN_DAYS = 14;
export const CLOCK_WARN_S = 5;

const pass = (id: string, title: string, detail: string): CheckResult => ({ id, title, status: 'PASS', detail, fix: null });
const warn = (id: string, title: string, detail: string, fix: string): CheckResult => ({ id, title, status: 'WARN', detail, fix });
const fail = (id: string, title: string, detail: string, fix: string): CheckResult => ({ id, title, status: 'FAIL', detail, fix });
const msg = (err: unknown) => (err as Error).message.split('\n')[0]!;

async function systemdNtp(): Promise<boolean | null> {
  try {
    const { stdout } = await promisify(execFile)('timedatectl', ['show', '-p', 'NTPSynchronized', '--value'], { timeout: 3000 });
    return stdout.trim() === 'yes';
  } catch {
    return null;
  }
}

/** How long the relay check waits for its own listener to answer. */
export const RELAY_PROBE_TIMEOUT_MS = 3000;

type RelayAnswer = { opened: true } | { opened: false; status: number; contentType: string; code: string | undefined } | { error: string };

/** A WebSocket upgrade to `url` with no credentials, as a client without a machine token makes it. */
function probeRelay(url: string, tls: boolean): Promise<RelayAnswer> {
  return new Promise((resolve) => {
    // Our own listener on loopback: its certificate names the public host, not this address.
    const ws = new WebSocket(url, { handshakeTimeout: RELAY_PROBE_TIMEOUT_MS, perMessageDeflate: false, ...(tls ? { rejectUnauthorized: false } : {}) });
    ws.on('open', () => {
      ws.terminate();
      resolve({ opened: true });
    });
    ws.on('unexpected-response', (_req, res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => {
        if (text.length < 4096) text += c;
      });
      res.on('end', () => {
        let code: string | undefined;
        try {
          code = (JSON.parse(text) as { code?: string }).code;
        } catch { /* not JSON: reported as no code */ }
        resolve({ opened: false, status: res.statusCode ?? 0, contentType: String(res.headers['content-type'] ?? ''), code });
      });
      res.on('error', (err) => resolve({ error: err.message }));
    });
    ws.on('error', (err) => resolve({ error: err.message }));
  });
}

export async function relayCheck(clients: number, listener: { host: string; port: number; tls: boolean } | null): Promise<CheckResult> {
  if (!listener) return warn('relay', 'relay', `on, ${clients} client(s); not probed: this replica has no TCP listener`, 'run weft-server doctor against a serving replica');
  const host = listener.host === '0.0.0.0' ? '127.0.0.1' : listener.host === '::' ? '::1' : listener.host;
  const url = `${listener.tls ? 'wss' : 'ws'}://${host.includes(':') ? `[${host}]` : host}:${listener.port}${RELAY_HTTP_PATH}`;
  const r = await probeRelay(url, listener.tls);
  if ('error' in r) return fail('relay', 'relay', `${url} did not answer a WebSocket upgrade: ${r.error}`, 'check the listener (--listen) and that nothing in this host drops loopback connections to it');
  if (r.opened) return fail('relay', 'relay', `${url} accepted a client without a machine token`, 'this is a bug: keep the relay off (--relay off) and report it');
  if (r.status === 401 && r.contentType.startsWith('application/problem+json') && r.code === 'machine_unauthorized') {
    return pass('relay', 'relay', `${RELAY_HTTP_PATH} answers (401 machine_unauthorized to a client without a machine token, as it should), ${clients} client(s)`);
  }
  return fail('relay', 'relay', `${url} answered a client without a machine token with ${r.status}${r.code ? ` ${r.code}` : ''}, not 401 machine_unauthorized`,
    r.status === 404 ? 'the route is not served: restart the replica with --relay on' : 'check what sits in front of this port (a proxy answering for it?)');
}

export async function serverDoctor(s: DoctorSources): Promise<ServerDoctorReport> {
  const checks: CheckResult[] = [];
  // Database.
  let dbUp = false;
  try {
    const t0 = performance.now();
    await s.prisma.$queryRawUnsafe('SELECT 1');
    dbUp = true;
    checks.push(pass('database', 'database', `${s.backend === 'pglite' ? 'embedded PGlite' : 'Postgres'} answers (${Math.round(performance.now() - t0)} ms)`));
  } catch (err) {
    checks.push(fail('database', 'database', `not reachable: ${msg(err)}`, s.backend === 'postgres' ? 'check Postgres is up and the database URL (WEFT_DATABASE_URL) is right' : 'check the data directory (disk full? permissions?) and the server log'));
  }
  // Migrations.
  if (dbUp) {
    try {
      const shipped = readMigrations(s.migrationsDir ?? shippedMigrationsDir).map((m) => m.name);
      const applied = (await s.prisma.$queryRawUnsafe<Array<{ migration_name: string }>>(
        'SELECT migration_name FROM "_prisma_migrations" WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL',
      )).map((r) => r.migration_name);
      const missing = shipped.filter((n) => !applied.includes(n));
      const unknown = applied.filter((n) => !shipped.includes(n));
      if (missing.length) checks.push(fail('migrations', 'migrations', `not applied: ${missing.join(', ')}`, 'restart weft-server: it applies migrations at start-up'));
      else if (unknown.length) checks.push(fail('migrations', 'migrations', `the database has migrations this weft-server does not know: ${unknown.join(', ')}`, 'upgrade this weft-server to the version that migrated the database'));
      else checks.push(pass('migrations', 'migrations', `all ${shipped.length} applied`));
    } catch (err) {
      checks.push(fail('migrations', 'migrations', `could not read them: ${msg(err)}`, 'see the server log'));
    }
  } else checks.push(fail('migrations', 'migrations', 'not checked: the database is not reachable', 'fix the database first'));
  // Change bus.
  if (!s.bus) checks.push(pass('bus', 'change bus', 'embedded database: one replica, no bus between replicas'));
  else {
    try {
      const position = s.bus.position();
      const oldest = s.bus.oldestAfter ? await s.bus.oldestAfter(position) : { head: await s.bus.head(), ageMs: null };
      const lag = Math.max(0, oldest.head - position);
      const ageS = lag > 0 && oldest.ageMs !== null ? Math.max(0, Math.round(oldest.ageMs / 1000)) : null;
      const d = `this replica is ${lag} change(s) behind the outbox${ageS !== null ? `, the oldest unapplied one ${ageS} s old` : ''}`;
      const fix = 'this replica is not hearing the change bus: look in its log for "change-bus connection lost" or outbox read errors, and in pg_stat_activity for its listener (application_name weft-change-bus/PID: waiting or idle in transaction?); restart this replica (it reloads every node)';
      if (lag >= BUS_LAG_FAIL || (ageS !== null && ageS >= BUS_LAG_FAIL_S)) checks.push(fail('bus', 'change bus', d, fix));
      else if (lag >= BUS_LAG_WARN || (ageS !== null && ageS >= BUS_LAG_WARN_S)) checks.push(warn('bus', 'change bus', d, `${fix}; a database under load delays the follower too: watch weft_change_bus_lag_seconds`));
      else checks.push(pass('bus', 'change bus', d));
    } catch (err) {
      checks.push(fail('bus', 'change bus', `outbox not readable: ${msg(err)}`, 'fix the database first'));
    }
  }
  // STUN.
  if (s.stunPort === null) checks.push(warn('stun', 'STUN', 'off (--stun-listen off): nodes learn no public address from this server', 'serve it: --stun-listen 0.0.0.0:3478, or list other regions in the config'));
  else {
    try {
      const r = await bindingRequest({ host: '127.0.0.1', port: s.stunPort, timeoutMs: 2000 });
      checks.push(pass('stun', 'STUN', `udp ${s.stunPort} answers (mapped ${r.address}:${r.port})`));
    } catch (err) {
      checks.push(fail('stun', 'STUN', `udp ${s.stunPort} on loopback did not answer: ${msg(err)}`, 'check nothing else holds the port and no firewall drops UDP to it'));
    }
  }
  // Relay.
  if (!s.relay) checks.push(warn('relay', 'relay', 'off (--relay off): nodes that cannot reach each other directly have no fallback', 'turn it on: --relay on'));
  else checks.push(await relayCheck(s.relay.clientCount, s.listener()));
  // TLS.
  const notAfter = s.tlsNotAfter();
  if (!notAfter) checks.push(warn('tls', 'TLS', 'this server serves plain HTTP', 'serve HTTPS with --tls-cert/--tls-key, or put a TLS proxy in front (deploy/haproxy/weft-tls.cfg)'));
  else {
    const days = Math.floor((notAfter.getTime() - Date.now()) / 86_400_000);
    if (days < 0) checks.push(fail('tls', 'TLS', `the certificate expired on ${notAfter.toISOString()}`, 'renew it and replace the --tls-cert/--tls-key files (reloaded without a restart)'));
    else if (days < TLS_WARN_DAYS) checks.push(warn('tls', 'TLS', `the certificate expires in ${days} day(s) (${notAfter.toISOString()})`, 'renew it and replace the files (reloaded without a restart)'));
    else checks.push(pass('tls', 'TLS', `the certificate is valid for ${days} more days`));
  }
  // Clock.
  const ntp = await (s.ntpSynchronized ?? systemdNtp)();
  let dbSkewS: number | null = null;
  if (dbUp && s.backend === 'postgres') {
    const t0 = Date.now();
    const [row] = await s.prisma.$queryRawUnsafe<Array<{ now: Date }>>('SELECT now() AS now');
    dbSkewS = (row!.now.getTime() - (t0 + Date.now()) / 2) / 1000;
  }
  if (dbSkewS !== null && Math.abs(dbSkewS) >= CLOCK_WARN_S) checks.push(fail('clock', 'clock', `the database's clock is ${Math.abs(dbSkewS).toFixed(1)} s ${dbSkewS > 0 ? 'ahead of' : 'behind'} this host's`, 'sync both clocks (timedatectl set-ntp true): machine tokens and presence use them'));
  else if (ntp === false) checks.push(warn('clock', 'clock', 'systemd says the clock is not NTP-synchronised', 'timedatectl set-ntp true'));
  else if (ntp === null && dbSkewS === null) checks.push(warn('clock', 'clock', 'not measured (no timedatectl, and the embedded database shares this clock)', 'make sure the host runs NTP (chrony, systemd-timesyncd)'));
  else checks.push(pass('clock', 'clock', [ntp ? 'NTP-synchronised' : null, dbSkewS !== null ? `database clock within ${Math.abs(dbSkewS).toFixed(1)} s` : null].filter(Boolean).join(', ')));
  return { version: 1, ok: !checks.some((c) => c.status === 'FAIL'), checks };
}

export function formatServerReport(r: ServerDoctorReport): string {
  const lines = r.checks.map((c) => `${c.status.padEnd(4)}  ${c.title}: ${c.detail}${c.fix ? `\n      fix: ${c.fix}` : ''}`);
  const fails = r.checks.filter((c) => c.status === 'FAIL').length;
  return `${lines.join('\n')}\n\n${fails ? `${fails} FAIL` : 'no FAIL'}, ${r.checks.filter((c) => c.status === 'WARN').length} WARN\n`;
}
