/**
 * The change bus: how a change made on one server replica reaches the others.
 *
 * Payloads are strings of at most MAX_PAYLOAD_BYTES (UTF-8), Postgres' NOTIFY limit; publish() rejects
 * anything larger with DbError BUS_PAYLOAD_TOO_LARGE on both backends, so code that works on the
 * embedded database does not break on Postgres. Split big changes before publishing.
 *
 * Every subscriber of every replica receives every payload, including the publisher's own: Postgres
 * delivers a session's notifications back to it, and the embedded bus does the same to match. Tag
 * payloads with an origin id and drop your own echoes.
 *
 * Delivery is at most once. The server uses it only as a wake-up for the change outbox (outbox.ts),
 * which is what makes cross-replica delivery reliable. On Postgres the listening connection reconnects by itself when it drops;
 * payloads published while it was down are lost, so onReconnect() handlers should treat a reconnect as
 * "anything may have changed" (e.g. resynchronise agents from the database).
 */
import pg from 'pg';
import { DbError } from './errors.js';
import type { Log } from './log.js';

export interface ChangeBus {
  /** Sends `payload` to every subscriber on every replica (this one included). */
  publish(payload: string): Promise<void>;
  /** Returns the unsubscribe function. Handlers run asynchronously, never inside publish(). */
  subscribe(handler: (payload: string) => void): () => void;
  /** Called after the bus lost its connection and got it back; payloads may have been missed. */
  onReconnect(handler: () => void): () => void;
}

/** Postgres' limit is "shorter than 8000 bytes" in the default configuration. */
export const MAX_PAYLOAD_BYTES = 7999;
export const CHANNEL = 'weft_changes';
/**
 * application_name of the listening connection, to find it in pg_stat_activity: this prefix,
 * then "/" and the process id, so one replica's listener can be told from another's.
 */
export const LISTENER_APPLICATION_NAME = 'weft-change-bus';

function checkPayload(payload: string, closed: boolean): void {
  if (closed) throw new DbError('BUS_CLOSED', 'change bus is closed');
  const bytes = Buffer.byteLength(payload, 'utf8');
  if (bytes > MAX_PAYLOAD_BYTES) {
    throw new DbError('BUS_PAYLOAD_TOO_LARGE', `change-bus payload is ${bytes} bytes; the limit is ${MAX_PAYLOAD_BYTES} (split the change)`);
  }
}

class Subscribers {
  private readonly handlers = new Set<(payload: string) => void>();
  private readonly reconnectHandlers = new Set<() => void>();

  constructor(private readonly log: Log) {}

  add(handler: (payload: string) => void): () => void {
    // Wrapped so the same function can subscribe twice and unsubscribe independently.
    const entry = (p: string) => handler(p);
    this.handlers.add(entry);
    return () => void this.handlers.delete(entry);
  }

  addReconnect(handler: () => void): () => void {
    const entry = () => handler();
    this.reconnectHandlers.add(entry);
    return () => void this.reconnectHandlers.delete(entry);
  }

  deliver(payload: string): void {
    for (const h of [...this.handlers]) {
      try {
        h(payload);
      } catch (err) {
        this.log.error({ err }, 'change-bus subscriber threw');
      }
    }
  }

  reconnected(): void {
    for (const h of [...this.reconnectHandlers]) {
      try {
        h();
      } catch (err) {
        this.log.error({ err }, 'change-bus reconnect handler threw');
      }
    }
  }

  clear(): void {
    this.handlers.clear();
    this.reconnectHandlers.clear();
  }
}

/** The embedded database's bus: one process, so delivery is in memory. */
export class LocalChangeBus implements ChangeBus {
  private readonly subs: Subscribers;
  private closed = false;

  constructor(log: Log) {
    this.subs = new Subscribers(log);
  }

  publish(payload: string): Promise<void> {
    try {
      checkPayload(payload, this.closed);
    } catch (err) {
      return Promise.reject(err);
    }
    setImmediate(() => this.subs.deliver(payload));
    return Promise.resolve();
  }

  subscribe(handler: (payload: string) => void): () => void {
    return this.subs.add(handler);
  }

  onReconnect(handler: () => void): () => void {
    return this.subs.addReconnect(handler);
  }

  close(): void {
    this.closed = true;
    this.subs.clear();
  }
}

const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5_000;

/**
 * LISTEN/NOTIFY on one dedicated connection (a pooled one could be handed to someone else and stop
 * listening). Publishing goes through the shared pool.
 */
export class PgChangeBus implements ChangeBus {
  private readonly subs: Subscribers;
  private listener: pg.Client | null = null;
  private closed = false;
  private failures = 0;
  private timer: NodeJS.Timeout | null = null;

  constructor(
    private readonly config: pg.ClientConfig,
    private readonly pool: pg.Pool,
    private readonly log: Log,
  ) {
    this.subs = new Subscribers(log);
  }

  /** Connects and LISTENs; rejects if the first connection fails. */
  async start(): Promise<void> {
    const client = await this.listen();
    if (!client) throw new DbError('BUS_CLOSED', 'change bus closed while starting');
  }

  async publish(payload: string): Promise<void> {
    checkPayload(payload, this.closed);
    await this.pool.query('SELECT pg_notify($1, $2)', [CHANNEL, payload]);
  }

  subscribe(handler: (payload: string) => void): () => void {
    return this.subs.add(handler);
  }

  onReconnect(handler: () => void): () => void {
    return this.subs.addReconnect(handler);
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.subs.clear();
    const client = this.listener;
    this.listener = null;
    await client?.end().catch(() => {});
  }

  /** One connection attempt; null if the bus was closed meanwhile. Throws if the attempt fails. */
  private async listen(): Promise<pg.Client | null> {
    const client = new pg.Client({ ...this.config, application_name: `${LISTENER_APPLICATION_NAME}/${process.pid}`, keepAlive: true });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.listener === client) this.listener = null;
      client.end().catch(() => {});
      if (this.closed) return;
      this.log.warn({ err }, 'change-bus connection lost; reconnecting');
      this.scheduleReconnect();
    };
    // Until LISTEN succeeds, failures surface as the rejection below; listeners go on first anyway so an
    // 'error' event can never be unhandled.
    let ready = false;
    client.on('error', (err) => (ready ? onLost(err) : undefined));
    client.on('end', () => (ready ? onLost() : undefined));
    client.on('notification', (msg) => {
      if (msg.channel === CHANNEL) this.subs.deliver(msg.payload ?? '');
    });
    try {
      await client.connect();
      await client.query(`LISTEN ${CHANNEL}`);
    } catch (err) {
      lost = true;
      client.end().catch(() => {});
      throw err;
    }
    ready = true;
    if (this.closed) {
      await client.end().catch(() => {});
      return null;
    }
    this.listener = client;
    return client;
  }

  private scheduleReconnect(): void {
    if (this.timer || this.closed) return;
    const base = Math.min(RECONNECT_MAX_MS, RECONNECT_MIN_MS * 2 ** this.failures);
    const delay = base / 2 + Math.random() * (base / 2);
    this.timer = setTimeout(() => {
      this.timer = null;
      this.listen().then(
        (client) => {
          if (!client) return;
          this.failures = 0;
          this.log.info({}, 'change-bus connection restored');
          this.subs.reconnected();
        },
        (err: unknown) => {
          this.failures++;
          this.log.warn({ err, attempt: this.failures }, 'change-bus reconnect failed');
          this.scheduleReconnect();
        },
      );
    }, delay);
    this.timer.unref();
  }
}
