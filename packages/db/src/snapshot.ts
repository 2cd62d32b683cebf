/**
 * Snapshots: the whole database as one stream of JSON lines, read in a single REPEATABLE READ
 * transaction (consistent while the server runs) and loaded into an empty, migrated database in a
 * single transaction (all or nothing). `weft-server backup`, `restore` and `db copy` (embedded to
 * Postgres) are all this one format, so a backup of either backend restores into either.
 *
 * The database does the type work: rows leave as `row_to_json` and come back through
 * `json_populate_recordset` of the same table type, so timestamps, bytea, JSON and arrays round-trip
 * without a JavaScript conversion of any of them. Every table carries a row count and an MD5 over
 * its rows' JSON text in a fixed order (collation "C", time zone UTC: the same on PGlite and on any
 * Postgres), computed in the snapshot transaction and again in the target after the load.
 *
 * Line 1 is the header (format, migrations, tables in load order with counts and checksums,
 * sequence positions); then one line per row, `{"t": TABLE, "r": ROW}`; the last line is
 * `{"end": true}` so a truncated file is refused rather than half restored.
 *
 * Left out: presence (`replicas`, `node_sessions`): they describe processes of the source that do
 * not exist where the snapshot is loaded. `nodes.online` is a cache of them that the first presence
 * sweep of the restored server corrects.
 */
import type { PrismaClient } from './generated/client.js';

export const SNAPSHOT_FORMAT = 'weft-snapshot';
export const SNAPSHOT_VERSION = 1;
const RUNTIME_TABLES = new Set(['replicas', 'node_sessions', '_prisma_migrations']);
/** Rows per read and per insert statement: bounded memory for a large audit table. */
const BATCH_ROWS = 1000;
/** A snapshot of a large tailnet takes seconds; Prisma's interactive default is 5 s. */
const TRANSACTION_TIMEOUT_MS = 30 * 60_000;

export interface SnapshotTable {
  name: string;
  rows: number;
  md5: string;
}

export interface SnapshotHeader {
  format: typeof SNAPSHOT_FORMAT;
  version: number;
  createdAt: string;
  backend: string;
  /** Applied migrations, in order: a snapshot loads only into a database at exactly these. */
  migrations: string[];
  /** In load order: every table after the tables it references. */
  tables: SnapshotTable[];
  sequences: Array<{ name: string; lastValue: string; isCalled: boolean }>;
}

export class SnapshotError extends Error {
  override name = 'SnapshotError';
}

type Tx = Pick<PrismaClient, '$queryRawUnsafe' | '$executeRawUnsafe'>;

const ident = (name: string) => `"${name.replaceAll('"', '""')}"`;

async function sessionSettings(tx: Tx): Promise<void> {
  await tx.$executeRawUnsafe(`SET LOCAL TIME ZONE 'UTC'`);
  await tx.$executeRawUnsafe(`SET LOCAL DateStyle = 'ISO, YMD'`);
  await tx.$executeRawUnsafe(`SET LOCAL extra_float_digits = 1`);
}

async function appliedMigrations(tx: Tx): Promise<string[]> {
  const rows = await tx.$queryRawUnsafe<Array<{ name: string }>>(
    `SELECT migration_name AS name FROM _prisma_migrations WHERE finished_at IS NOT NULL AND rolled_back_at IS NULL ORDER BY migration_name`,
  );
  return rows.map((r) => r.name);
}

/** Tables of the current schema in an order where each comes after every table it references. */
async function tablesInLoadOrder(tx: Tx): Promise<string[]> {
  const tables = (await tx.$queryRawUnsafe<Array<{ name: string }>>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind IN ('r', 'p') AND n.nspname = current_schema() ORDER BY c.relname`,
  )).map((r) => r.name).filter((t) => !RUNTIME_TABLES.has(t));
  const refs = await tx.$queryRawUnsafe<Array<{ child: string; parent: string }>>(
    `SELECT cl.relname AS child, pr.relname AS parent FROM pg_constraint co
     JOIN pg_class cl ON cl.oid = co.conrelid JOIN pg_class pr ON pr.oid = co.confrelid
     JOIN pg_namespace n ON n.oid = cl.relnamespace
     WHERE co.contype = 'f' AND n.nspname = current_schema()`,
  );
  const parents = new Map<string, Set<string>>(tables.map((t) => [t, new Set()]));
  for (const { child, parent } of refs) if (child !== parent && parents.has(child) && parents.has(parent)) parents.get(child)!.add(parent);
  const ordered: string[] = [];
  const placed = new Set<string>();
  while (ordered.length < tables.length) {
    const next = tables.find((t) => !placed.has(t) && [...parents.get(t)!].every((p) => placed.has(p)));
    if (!next) throw new SnapshotError(`foreign keys form a cycle among ${tables.filter((t) => !placed.has(t)).join(', ')}`);
    ordered.push(next);
    placed.add(next);
  }
  return ordered;
}

async function tableSum(tx: Tx, table: string): Promise<SnapshotTable> {
  const [row] = await tx.$queryRawUnsafe<Array<{ rows: number; md5: string }>>(
    `SELECT count(*)::int AS rows,
            coalesce(md5(string_agg(j, E'\\n' ORDER BY j COLLATE "C")), '') AS md5
     FROM (SELECT row_to_json(t)::text AS j FROM ${ident(table)} t) s`,
  );
  return { name: table, rows: row!.rows, md5: row!.md5 };
}

async function sequences(tx: Tx): Promise<SnapshotHeader['sequences']> {
  const names = await tx.$queryRawUnsafe<Array<{ name: string }>>(
    `SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE c.relkind = 'S' AND n.nspname = current_schema() ORDER BY c.relname`,
  );
  const out: SnapshotHeader['sequences'] = [];
  for (const { name } of names) {
    const [row] = await tx.$queryRawUnsafe<Array<{ lastValue: string; isCalled: boolean }>>(
      `SELECT last_value::text AS "lastValue", is_called AS "isCalled" FROM ${ident(name)}`,
    );
    out.push({ name, lastValue: row!.lastValue, isCalled: row!.isCalled });
  }
  return out;
}

/**
 * Writes a consistent snapshot of `prisma`'s database through `write`, one line per call (each
 * ends in "\n"). On the embedded database this holds its one connection for the duration.
 */
export async function writeSnapshot(prisma: PrismaClient, backend: string, write: (line: string) => Promise<void>): Promise<SnapshotHeader> {
  return prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await sessionSettings(tx);
    const names = await tablesInLoadOrder(tx);
    const tables: SnapshotTable[] = [];
    for (const name of names) tables.push(await tableSum(tx, name));
    const header: SnapshotHeader = {
      format: SNAPSHOT_FORMAT, version: SNAPSHOT_VERSION, createdAt: new Date().toISOString(), backend,
      migrations: await appliedMigrations(tx), tables, sequences: await sequences(tx),
    };
    await write(JSON.stringify(header) + '\n');
    for (const name of names) {
      let after = '(0,0)';
      for (;;) {
        const rows = await tx.$queryRawUnsafe<Array<{ ctid: string; j: string }>>(
          `SELECT ctid::text AS ctid, row_to_json(t)::text AS j FROM ${ident(name)} t WHERE ctid > $1::tid ORDER BY ctid LIMIT ${BATCH_ROWS}`,
          after,
        );
        if (rows.length === 0) break;
        await write(rows.map((r) => `{"t":${JSON.stringify(name)},"r":${r.j}}\n`).join(''));
        after = rows.at(-1)!.ctid;
        if (rows.length < BATCH_ROWS) break;
      }
    }
    await write('{"end":true}\n');
    return header;
  }, { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS });
}

/** Reads and checks the header line. */
export function parseSnapshotHeader(line: string): SnapshotHeader {
  let h: SnapshotHeader;
  try {
    h = JSON.parse(line) as SnapshotHeader;
  } catch {
    throw new SnapshotError('not a Weft snapshot: the first line is not JSON');
  }
  if (h?.format !== SNAPSHOT_FORMAT) throw new SnapshotError('not a Weft snapshot: the first line has no "format": "weft-snapshot"');
  if (h.version !== SNAPSHOT_VERSION) throw new SnapshotError(`snapshot format version ${h.version} is not supported (this weft-server reads version ${SNAPSHOT_VERSION})`);
  if (!Array.isArray(h.tables) || !Array.isArray(h.migrations) || !Array.isArray(h.sequences)) throw new SnapshotError('snapshot header is incomplete (tables, migrations, sequences)');
  return h;
}

export interface RestoreResult {
  header: SnapshotHeader;
  tables: SnapshotTable[];
}

/**
 * Loads a snapshot into `prisma`'s database, which must be migrated to exactly the snapshot's
 * migrations and hold no rows. One transaction: on any error (a checksum that does not match, a
 * truncated file, a row the schema refuses) nothing is written. Verifies every table's count and
 * checksum against the header before committing.
 */
export async function restoreSnapshot(prisma: PrismaClient, lines: AsyncIterable<string>): Promise<RestoreResult> {
  const it = lines[Symbol.asyncIterator]();
  const first = await it.next();
  if (first.done) throw new SnapshotError('the snapshot is empty');
  const header = parseSnapshotHeader(first.value);
  return prisma.$transaction(async (tx) => {
    await sessionSettings(tx);
    const have = await appliedMigrations(tx);
    if (have.join('\n') !== header.migrations.join('\n')) {
      const missing = header.migrations.filter((m) => !have.includes(m));
      const extra = have.filter((m) => !header.migrations.includes(m));
      throw new SnapshotError(
        `the snapshot was taken at other migrations than this database has (${missing.length ? `missing here: ${missing.join(', ')}` : ''}${missing.length && extra.length ? '; ' : ''}${extra.length ? `newer here: ${extra.join(', ')}` : ''}). ` +
        'Restore with the weft-server version that took it, then upgrade.',
      );
    }
    const target = await tablesInLoadOrder(tx);
    const known = new Set(target);
    for (const t of header.tables) if (!known.has(t.name)) throw new SnapshotError(`the snapshot has a table "${t.name}" this database does not`);
    for (const name of target) {
      const [row] = await tx.$queryRawUnsafe<Array<{ n: number }>>(`SELECT count(*)::int AS n FROM ${ident(name)}`);
      // A migration may seed a row (the outbox counter): it is replaced by the snapshot's.
      if (row!.n > 0 && !(await seededOnly(tx, name))) {
        throw new SnapshotError(`the target database is not empty: table ${name} has ${row!.n} rows. Restore into a fresh data directory or an empty database.`);
      }
      if (row!.n > 0) await tx.$executeRawUnsafe(`DELETE FROM ${ident(name)}`);
    }
    const batches = new Map<string, string[]>();
    const flush = async (name: string) => {
      const rows = batches.get(name);
      if (!rows?.length) return;
      await tx.$executeRawUnsafe(
        `INSERT INTO ${ident(name)} SELECT * FROM json_populate_recordset(NULL::${ident(name)}, $1::json)`,
        `[${rows.join(',')}]`,
      );
      batches.set(name, []);
    };
    const order = header.tables.map((t) => t.name);
    let current = -1;
    let ended = false;
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      if (ended) throw new SnapshotError('the snapshot has data after its end marker');
      const line = next.value;
      if (line === '') continue;
      if (line === '{"end":true}') {
        ended = true;
        continue;
      }
      const m = /^\{"t":("(?:[^"\\]|\\.)*"),"r":(.*)\}$/.exec(line);
      if (!m) throw new SnapshotError(`a snapshot line is malformed: ${line.slice(0, 80)}`);
      const table = JSON.parse(m[1]!) as string;
      const at = order.indexOf(table);
      if (at < 0) throw new SnapshotError(`a row names table "${table}", which the snapshot header does not list`);
      if (at < current) throw new SnapshotError(`rows of table "${table}" come after a later table's: the snapshot is out of order`);
      if (at > current) {
        if (current >= 0) await flush(order[current]!);
        current = at;
      }
      const list = batches.get(table) ?? [];
      list.push(m[2]!);
      batches.set(table, list);
      if (list.length >= BATCH_ROWS) await flush(table);
    }
    if (!ended) throw new SnapshotError('the snapshot is truncated (no end marker): nothing was restored');
    if (current >= 0) await flush(order[current]!);
    for (const s of header.sequences) {
      await tx.$queryRawUnsafe(`SELECT setval($1::regclass, $2::bigint, $3::boolean)::text`, ident(s.name), s.lastValue, s.isCalled);
    }
    const tables: SnapshotTable[] = [];
    for (const t of header.tables) {
      const got = await tableSum(tx, t.name);
      if (got.rows !== t.rows || got.md5 !== t.md5) {
        throw new SnapshotError(`table ${t.name} does not match the snapshot after loading (${got.rows} rows, expected ${t.rows}; checksum ${got.md5 === t.md5 ? 'equal' : 'differs'}): nothing was restored`);
      }
      tables.push(got);
    }
    return { header, tables };
  }, { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS });
}

/** The only rows a fresh, migrated database holds: the outbox counter at its seed value. */
async function seededOnly(tx: Tx, table: string): Promise<boolean> {
  if (table !== 'change_seq') return false;
  const rows = await tx.$queryRawUnsafe<Array<{ last: string }>>(`SELECT last::text AS last FROM change_seq`);
  return rows.length === 1 && rows[0]!.last === '0';
}

/** Counts and checksums of every table, for comparing two databases (`db copy` verifies with it). */
export async function databaseSums(prisma: PrismaClient): Promise<SnapshotTable[]> {
  return prisma.$transaction(async (tx) => {
    await tx.$executeRawUnsafe('SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY');
    await sessionSettings(tx);
    const out: SnapshotTable[] = [];
    for (const name of await tablesInLoadOrder(tx)) out.push(await tableSum(tx, name));
    return out;
  }, { timeout: TRANSACTION_TIMEOUT_MS, maxWait: TRANSACTION_TIMEOUT_MS });
}
