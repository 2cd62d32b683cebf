/**
 * Admission for full netmaps: at most `cap` are being written at once, the rest wait their turn
 * in arrival order. Without it a reconnect storm starts every agent's netmap at once: each gets
 * its bytes a little at a time, all finish late together, and agents whose netmap (or a ping
 * queued behind it) did not arrive in time give up and reconnect, costing another netmap each.
 * With it the netmaps started finish first, and an agent waiting for its turn is idle on a
 * socket its pings still reach. The caller says when a netmap has left; a place is given back
 * after `timeoutMs` in any case, so readers that never read (their netmap never leaves) cannot
 * hold every place and stop everyone else's netmaps.
 */
export class NetmapGate {
  private writing = 0;
  /** Waiting netmaps from `head` on (an index, not shift(): a storm queues thousands). */
  private waiting: (((done: () => void) => void) | undefined)[] = [];
  private head = 0;
  private draining = false;

  constructor(private readonly cap: number, private readonly timeoutMs: number) {}

  /**
   * Calls `start` now if fewer than `cap` netmaps are being written, else once the ones before it
   * have left; `start` is given `done`, to call once its netmap has left (or was never written).
   */
  admit(start: (done: () => void) => void): void {
    this.waiting.push(start);
    this.drain();
  }

  /** Netmaps waiting for their turn (metrics, tests). */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Netmaps being written. */
  get inFlight(): number {
    return this.writing;
  }

  private drain(): void {
    // A `done` called from within `start` (a session closed meanwhile) lands here again: the loop
    // below picks up the freed place, without recursing once per closed session.
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.writing < this.cap && this.head < this.waiting.length) {
        const start = this.waiting[this.head]!;
        this.waiting[this.head++] = undefined; // its session is not held on to by the queue
        if (this.head === this.waiting.length) {
          this.waiting = [];
          this.head = 0;
        }
        this.writing++;
        let freed = false;
        const done = () => {
          if (freed) return;
          freed = true;
          clearTimeout(timer);
          this.writing--;
          this.drain();
        };
        const timer = setTimeout(done, this.timeoutMs);
        timer.unref();
        start(done);
      }
    } finally {
      this.draining = false;
    }
  }
}
