/**
 * Where a change goes after the write path emits it: to this replica's mapper at once, and onto
 * the change bus for every other replica (Postgres NOTIFY). A replica ignores its own echoes.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import type { ChangeBus } from '@weft/db';
import type { Change } from './state/changes.js';
import type { Mapper } from './mapper/mapper.js';

/** `at`: the publisher's wall clock (ms since the epoch) when it published, for bus-lag metrics. */
interface Envelope { origin: string; at?: number; change: Change }

export class ChangeHub {
  readonly origin = randomUUID();
  private unsubscribe: (() => void) | null = null;
  private unsubscribeReconnect: (() => void) | null = null;
  private mapper: Mapper | null = null;

  constructor(
    private readonly bus: ChangeBus,
    private readonly log: FastifyBaseLogger,
    /** Called with publish-to-receive seconds for each change from another replica; absent = not measured. */
    private readonly onBusLag?: (seconds: number) => void,
  ) {}

  /** Starts delivering to `mapper`, from this replica and from the bus. */
  connect(mapper: Mapper): void {
    this.mapper = mapper;
    this.unsubscribe = this.bus.subscribe((payload) => {
      let env: Envelope;
      try {
        env = JSON.parse(payload) as Envelope;
      } catch (err) {
        this.log.warn({ err }, 'ignoring malformed change-bus payload');
        return;
      }
      if (env.origin === this.origin) return;
      if (this.onBusLag && typeof env.at === 'number') this.onBusLag((Date.now() - env.at) / 1000);
      void mapper.apply(env.change);
    });
    // Notifications sent while the listener was reconnecting are lost: start from the database.
    this.unsubscribeReconnect = this.bus.onReconnect(() => {
      this.log.warn('change bus reconnected; resyncing every session');
      void mapper.resyncAll();
    });
  }

  /** True once the server is shutting down: nothing more goes onto the bus. */
  closed = false;

  emit = (change: Change): void => {
    void this.mapper?.apply(change);
    if (this.closed) return;
    const at = Date.now();
    for (const part of splitForBus(change)) {
      this.bus.publish(JSON.stringify({ origin: this.origin, at, change: part } satisfies Envelope)).catch((err: unknown) => {
        this.log.error({ err, change: change.kind }, 'failed to publish change to other replicas');
      });
    }
  };

  close(): void {
    this.closed = true;
    this.unsubscribe?.();
    this.unsubscribeReconnect?.();
  }
}

/** NOTIFY payloads are limited to ~8000 bytes: split long id lists. */
function splitForBus(change: Change): Change[] {
  const MAX = 500;
  if (change.kind === 'nodes-patched') {
    const out: Change[] = [];
    for (let i = 0; i < change.patches.length; i += 20) out.push({ kind: 'nodes-patched', patches: change.patches.slice(i, i + 20) });
    return out;
  }
  if (change.kind === 'presence') {
    // ~80 bytes per node.
    const out: Change[] = [];
    for (let i = 0; i < change.nodes.length; i += 50) out.push({ kind: 'presence', nodes: change.nodes.slice(i, i + 50) });
    return out;
  }
  const out: Change[] = [];
  for (let i = 0; i < change.nodeIds.length; i += MAX) out.push({ ...change, nodeIds: change.nodeIds.slice(i, i + MAX) });
  return out;
}
