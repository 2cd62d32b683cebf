/**
 * Coalesces the endpoint reports of connected nodes into few writes. Per node: the latest report
 * wins; a value equal to what is stored is not written; at most one write per `intervalMs` (the
 * first report of a quiet node is written at once, later ones in the window become one trailing
 * write of the latest value). A node's last session closing, and the server closing, flush what
 * is pending. A flood of N reports therefore costs O(duration / interval) writes, not N.
 *
 * Writes go through `write` (state.nodes.patch, the one write path), one at a time per node, so
 * an older value never lands after a newer one.
 */

export interface EndpointWriterOptions {
  write: (nodeId: number, endpoints: string[]) => Promise<void>;
  intervalMs: number;
  onError: (nodeId: number, err: unknown) => void;
  /** For tests. */
  now?: () => number;
}

interface Entry {
  /** Sessions of this node attached here; the entry goes when the last one detaches. */
  sessions: number;
  /** What the database holds, as far as we know (key form); undefined = unknown. */
  stored: string | undefined;
  /** Latest report not written yet. */
  pending: string[] | undefined;
  lastWriteAt: number;
  timer: NodeJS.Timeout | undefined;
  writing: Promise<void> | undefined;
}

const keyOf = (endpoints: string[]) => endpoints.join(',');

export class EndpointWriter {
  private readonly entries = new Map<number, Entry>();
  private closed = false;
  private readonly now: () => number;

  constructor(private readonly opts: EndpointWriterOptions) {
    this.now = opts.now ?? Date.now;
  }

  /** A session of `nodeId` opened; `stored` is the endpoints its row holds. */
  attach(nodeId: number, stored: string[]): void {
    const e = this.entries.get(nodeId);
    if (e) {
      e.sessions++;
      return;
    }
    this.entries.set(nodeId, { sessions: 1, stored: keyOf(stored), pending: undefined, lastWriteAt: -Infinity, timer: undefined, writing: undefined });
  }

  /** A session of `nodeId` closed: the last one flushes what is pending and forgets the node. */
  async detach(nodeId: number): Promise<void> {
    const e = this.entries.get(nodeId);
    if (!e || --e.sessions > 0) return;
    await this.flushEntry(nodeId, e);
    if (e.sessions <= 0 && this.entries.get(nodeId) === e) this.entries.delete(nodeId);
  }

  report(nodeId: number, endpoints: string[]): void {
    const e = this.entries.get(nodeId);
    if (!e || this.closed) return;
    const key = keyOf(endpoints);
    e.pending = key === e.stored ? undefined : endpoints;
    if (e.pending && !e.writing) this.schedule(nodeId, e);
  }

  /** Server shutdown: every pending value written, later reports dropped. */
  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.entries].map(([id, e]) => this.flushEntry(id, e)));
  }

  /** Nodes with a write waiting for its window (for tests and metrics). */
  get pendingCount(): number {
    let n = 0;
    for (const e of this.entries.values()) if (e.pending) n++;
    return n;
  }

  private schedule(nodeId: number, e: Entry): void {
    if (e.timer) return;
    const wait = e.lastWriteAt + this.opts.intervalMs - this.now();
    if (wait <= 0) {
      this.startWrite(nodeId, e);
      return;
    }
    e.timer = setTimeout(() => {
      e.timer = undefined;
      if (e.pending && !e.writing) this.startWrite(nodeId, e);
    }, wait);
    e.timer.unref();
  }

  private startWrite(nodeId: number, e: Entry): void {
    const endpoints = e.pending!;
    e.pending = undefined;
    e.lastWriteAt = this.now();
    e.writing = this.opts.write(nodeId, endpoints).then(
      () => {
        e.stored = keyOf(endpoints);
      },
      (err: unknown) => {
        e.stored = undefined; // unknown now: the next report is written whatever it holds
        this.opts.onError(nodeId, err);
      },
    ).finally(() => {
      e.writing = undefined;
      // A report that equals what just got stored is nothing to write.
      if (e.pending && keyOf(e.pending) === e.stored) e.pending = undefined;
      if (e.pending && !this.closed) this.schedule(nodeId, e);
    });
  }

  private async flushEntry(nodeId: number, e: Entry): Promise<void> {
    for (;;) {
      clearTimeout(e.timer);
      e.timer = undefined;
      if (e.writing) {
        await e.writing;
        continue;
      }
      if (!e.pending) return;
      this.startWrite(nodeId, e);
    }
  }
}
