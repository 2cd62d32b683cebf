/**
 * Turns for the work an agent connection starts on this server (its token checked, its WebSocket
 * upgraded, its session attached, its netmap or resume made), so that a reconnect storm cannot
 * hold the event loop.
 *
 * Why: libuv's poll phase hands out up to 48 x 1024 ready events before it returns to timers.
 * With 10,000 agents reconnecting at once every one is ready, and each connection's callback did
 * about a millisecond of work, so one poll phase ran for 11-21 s (bench:control, 10,000 nodes):
 * timers, pings and `/healthz` waited that long, and on Postgres a transaction open meanwhile sat
 * idle past `idle_in_transaction_session_timeout` and was killed.
 *
 * How: work goes ahead at once while the current slice (SLICE ms from its first caller) lasts;
 * past it, callers wait in arrival order and are let in from a `setImmediate`, a slice at a time,
 * so the loop turns (timers, other sockets) between slices. An idle server adds no delay: the
 * first caller opens a slice and goes ahead.
 */
import { performance } from 'node:perf_hooks';

const RESOLVED = Promise.resolve();

export class Turns {
  /** Callers waiting for a turn, from `head` on (an index, not shift(): a storm queues thousands). */
  private waiting: ((() => void) | undefined)[] = [];
  private head = 0;
  /** When the open slice ends (performance.now() ms); 0 = none open. */
  private sliceEnds = 0;

  constructor(private readonly sliceMs: number) {}

  /** Callers waiting now (metrics, tests). */
  get queued(): number {
    return this.waiting.length - this.head;
  }

  /** Resolves when the caller may start its work: at once while the slice lasts and nobody waits. */
  turn(): Promise<void> {
    const now = performance.now();
    if (this.queued === 0) {
      if (this.sliceEnds === 0) this.open(now);
      if (now < this.sliceEnds) return RESOLVED;
    }
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private open(now: number): void {
    this.sliceEnds = now + this.sliceMs;
    setImmediate(() => this.next());
  }

  /** The loop turned: the slice is over; let the next callers in, as many as a slice allows. */
  private next(): void {
    this.sliceEnds = 0;
    if (this.queued) void this.pump();
  }

  private async pump(): Promise<void> {
    this.open(performance.now());
    while (this.queued && performance.now() < this.sliceEnds) {
      const resolve = this.waiting[this.head]!;
      this.waiting[this.head++] = undefined;
      if (this.head === this.waiting.length) {
        this.waiting = [];
        this.head = 0;
      }
      resolve();
      // Its work (up to its next real wait) runs before the clock is read again.
      await RESOLVED;
      await RESOLVED;
    }
  }
}
