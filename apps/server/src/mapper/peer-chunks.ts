/**
 * The serialized peer list, kept as fixed-size chunks of UTF-8 JSON so a full netmap is a list of
 * cached buffers, sent as WebSocket fragments: a change re-serializes one chunk, not the whole
 * list, and a netmap for one node costs one chunk rebuild (to leave itself out). Every other
 * chunk is the same Buffer for every node, so 10,000 agents reconnecting at once do not each
 * cost a 3 MB string and its 3 MB encoding.
 */
const CHUNK = 256;

export class PeerChunks {
  private ids: number[] = [];
  private json = new Map<number, string>();
  /** Chunk c as "," + its peers' JSON joined by ","; null until built after a change. */
  private chunks: (Buffer | null)[] = [];
  private position = new Map<number, number>();

  /** Replaces the whole set; `entries` in id order. */
  reset(entries: Iterable<[number, string]>): void {
    this.ids = [];
    this.json.clear();
    for (const [id, j] of entries) {
      this.ids.push(id);
      this.json.set(id, j);
    }
    this.reindex();
  }

  set(id: number, json: string): void {
    if (!this.json.has(id)) {
      this.json.set(id, json);
      // Ids only grow for new nodes, so appending keeps the list sorted in the common case.
      const last = this.ids[this.ids.length - 1];
      if (last === undefined || last < id) {
        this.position.set(id, this.ids.length);
        this.ids.push(id);
        const c = Math.floor((this.ids.length - 1) / CHUNK);
        this.chunks[c] = null;
      } else {
        this.ids = [...this.ids, id].sort((a, b) => a - b);
        this.reindex();
      }
      return;
    }
    this.json.set(id, json);
    this.invalidate(id);
  }

  delete(id: number): void {
    if (!this.json.delete(id)) return;
    this.ids = this.ids.filter((x) => x !== id);
    this.reindex();
  }

  get size(): number {
    return this.ids.length;
  }

  /**
   * The JSON array body (without brackets) of every peer except `exclude`, as parts to send in
   * order; shared buffers, never to be modified.
   */
  partsExcept(exclude: number): Buffer[] {
    const parts: Buffer[] = [];
    const skipChunk = this.position.has(exclude) ? Math.floor(this.position.get(exclude)! / CHUNK) : -1;
    for (let c = 0; c < this.chunks.length; c++) {
      const b = c === skipChunk ? Buffer.from(`,${this.build(c, exclude)}`) : this.chunk(c);
      if (b.length > 1) parts.push(b); // "," alone: nothing left in this chunk
    }
    if (parts.length) parts[0] = parts[0]!.subarray(1); // a view without the leading ","
    return parts;
  }

  private chunk(c: number): Buffer {
    let b = this.chunks[c];
    if (b == null) {
      b = Buffer.from(`,${this.build(c, -1)}`);
      this.chunks[c] = b;
    }
    return b;
  }

  private build(c: number, exclude: number): string {
    const out: string[] = [];
    for (const id of this.ids.slice(c * CHUNK, (c + 1) * CHUNK)) if (id !== exclude) out.push(this.json.get(id)!);
    return out.join(',');
  }

  private invalidate(id: number): void {
    const p = this.position.get(id);
    if (p !== undefined) this.chunks[Math.floor(p / CHUNK)] = null;
  }

  private reindex(): void {
    // Appends take the fast path in set(); this runs for deletes and out-of-order inserts.
    this.position.clear();
    this.ids.forEach((id, i) => this.position.set(id, i));
    this.chunks = new Array(Math.ceil(this.ids.length / CHUNK)).fill(null);
  }
}
