/**
 * Counts the SQL statements Prisma sends through its driver adapter, BEGIN and COMMIT included:
 * each one is a round trip (to Postgres over the socket; on PGlite, a turn through the WASM
 * database in the server's own thread), so "statements per write" is what a write costs the
 * database before any row is touched. A plain number, read at scrape time (`weft_db_statements_total`).
 */
export interface StatementCount {
  /** Statements sent since the database was opened. */
  readonly statements: number;
}

interface Queryable {
  queryRaw(q: unknown): Promise<unknown>;
  executeRaw(q: unknown): Promise<number>;
}

interface Transaction extends Queryable {
  /** Phantom: the adapter itself sends COMMIT / ROLLBACK (PGlite); otherwise Prisma sends them through `executeRaw` (pg). */
  readonly options: { usePhantomQuery: boolean };
}

interface Adapter extends Queryable {
  startTransaction(isolationLevel?: unknown): Promise<Transaction>;
}

interface AdapterFactory {
  connect(): Promise<Adapter>;
}

/** `factory`, counting into the returned count every statement of every adapter it connects. */
export function countStatements<F extends AdapterFactory>(factory: F): { factory: F; count: StatementCount } {
  const count = { statements: 0 };
  const counted = <Q extends Queryable>(q: Q): Q =>
    new Proxy(q, {
      get(target, prop, receiver) {
        const v = Reflect.get(target, prop, receiver) as unknown;
        if (typeof v !== 'function') return v;
        if (prop === 'queryRaw' || prop === 'executeRaw') {
          return (...args: unknown[]) => {
            count.statements++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        // The adapter sends BEGIN on its own connection, out of our sight: one statement.
        if (prop === 'startTransaction') {
          return async (...args: unknown[]) => {
            count.statements++;
            return counted(await (v as (...a: unknown[]) => Promise<Transaction>).apply(target, args));
          };
        }
        if ((prop === 'commit' || prop === 'rollback') && (target as Partial<Transaction>).options?.usePhantomQuery) {
          return (...args: unknown[]) => {
            count.statements++;
            return (v as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return (v as (...a: unknown[]) => unknown).bind(target);
      },
    });
  const wrapped = new Proxy(factory, {
    get(target, prop, receiver) {
      const v = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'connect') return async () => counted(await target.connect());
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { factory: wrapped, count };
}
