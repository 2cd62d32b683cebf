/**
 * The serialized peer list, kept as fixed-size chunks of UTF-8 JSON so a full netmap is a list of
 * cached buffers, sent as WebSocket fragments: a change re-serializes one chunk, not the whole
 * list. A netmap for one node leaves itself out by sending its chunk as two views around its own
 * entry, so every byte sent is a cached buffer shared by every node: 10,000 agents reconnecting
 * at once do not each cost a 3 MB string and its 3 MB encoding, nor (under a policy, where a
 * node's whole view is often one chunk) a copy of their view.
 *
 * For agents that read compressed netmaps, each chunk is also kept deflated, in pieces of PIECE
 * entries (deflate-piece.ts): a compressed netmap is the cached pieces, and only the piece holding
 * the receiving node is made for that session, without its entry (stored, not compressed).
 */
import { deflatePiece, storedPiece } from './deflate-piece.js';

const CHUNK = 256;
/**
 * Entries per deflated piece: small, since a netmap sends the piece holding its own node
 * uncompressed (16 entries of ~1 KB); large enough that the pieces compress nearly as well as the
 * whole (deflate looks back 32 KB at most anyway).
 */
const PIECE = 16;

/** One chunk's bytes, and where each entry starts in them (entry i is `bytes[starts[i], starts[i + 1])`). */
interface Built {
  bytes: Buffer;
  /** One more than the entries: the last is bytes.length. */
  starts: number[];
}

/** A piece (or a chunk) deflated with its entries' leading ","s (`rest`), and without the first one (`first`: the one that opens a list). */
interface Deflated {
  rest?: Buffer;
  first?: Buffer;
}

/** A list as raw deflate parts to send in order (pieces that concatenate), and the bytes of JSON they inflate to. */
export interface DeflatedParts {
  pieces: Buffer[];
  jsonBytes: number;
}

export class PeerChunks {
  private ids: number[] = [];
  private json = new Map<number, string>();
  /** Chunk c as "," + its peers' JSON joined by ","; null until built after a change. */
  private chunks: (Built | null)[] = [];
  private position = new Map<number, number>();
  /**
   * Piece g (entries [g * PIECE, (g + 1) * PIECE) of the list) deflated; built when first sent.
   * Kept apart from its chunk's JSON: a change to one entry (an online patch: a storm makes one
   * per node) drops the one piece holding it, not its chunk's other fifteen.
   */
  private deflated: (Deflated | undefined)[] = [];
  /** Chunk c's deflated pieces joined; dropped with any of its pieces. */
  private deflatedChunks: (Deflated | undefined)[] = [];
  /** Counts every change (set, delete, reset): what is derived from the whole list is keyed on it. */
  generation = 0;

  /** `deflate`: what compresses a piece (tests count what it is given). */
  constructor(private readonly deflate: (text: Buffer) => Buffer = deflatePiece) {}

  /** Replaces the whole set; `entries` in id order. */
  reset(entries: Iterable<[number, string]>): void {
    this.generation++;
    this.ids = [];
    this.json.clear();
    for (const [id, j] of entries) {
      this.ids.push(id);
      this.json.set(id, j);
    }
    this.reindex();
  }

  set(id: number, json: string): void {
    this.generation++;
    if (!this.json.has(id)) {
      this.json.set(id, json);
      // Ids only grow for new nodes, so appending keeps the list sorted in the common case.
      const last = this.ids[this.ids.length - 1];
      if (last === undefined || last < id) {
        this.position.set(id, this.ids.length);
        this.ids.push(id);
        this.invalidate(id);
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
    this.generation++;
    this.ids = this.ids.filter((x) => x !== id);
    this.reindex();
  }

  has(id: number): boolean {
    return this.json.has(id);
  }

  /** The ids listed, ascending; not to be modified. */
  get idList(): readonly number[] {
    return this.ids;
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
    const at = this.position.get(exclude);
    const skipChunk = at === undefined ? -1 : Math.floor(at / CHUNK);
    for (let c = 0; c < this.chunks.length; c++) {
      const { bytes, starts } = this.chunk(c);
      if (c !== skipChunk) parts.push(bytes);
      else {
        // Each entry carries its leading ",", so the bytes before and after it join up exactly.
        const i = at! - c * CHUNK;
        parts.push(bytes.subarray(0, starts[i]), bytes.subarray(starts[i + 1]));
      }
    }
    const sent = parts.filter((b) => b.length > 1); // "," alone or empty: nothing left of this chunk
    if (sent.length) sent[0] = sent[0]!.subarray(1); // a view without the leading ","
    return sent;
  }

  /**
   * What partsExcept(exclude) sends, as raw deflate: one buffer per chunk (a WebSocket fragment
   * each, as for text), each chunk without `exclude` its cached pieces joined (shared, never to be
   * modified); the chunk with it is its cached pieces and the one holding `exclude`, without it,
   * as stored blocks, joined for this netmap.
   */
  deflatedExcept(exclude: number): DeflatedParts {
    const parts: Buffer[] = [];
    let jsonBytes = 0;
    const at = this.position.get(exclude) ?? -1;
    for (let c = 0; c < this.chunks.length; c++) {
      const b = this.chunk(c);
      const own = at - c * CHUNK;
      const entries = b.starts.length - 1;
      // The list's first entry goes without its leading ",".
      if (own < 0 || own >= entries) {
        parts.push(this.deflatedChunk(b, c, jsonBytes === 0));
        jsonBytes += b.bytes.length - (jsonBytes === 0 ? 1 : 0);
        continue;
      }
      const pieces: Buffer[] = [];
      for (let p = 0; p * PIECE < entries; p++) {
        const [lo, hi] = [p * PIECE, Math.min(entries, (p + 1) * PIECE)];
        const skip = jsonBytes === 0 ? 1 : 0;
        if (own < lo || own >= hi) {
          pieces.push(this.deflatedPiece(b, c, p, skip === 1));
          jsonBytes += b.starts[hi]! - b.starts[lo]! - skip;
          continue;
        }
        const rest = Buffer.concat([b.bytes.subarray(b.starts[lo], b.starts[own]), b.bytes.subarray(b.starts[own + 1], b.starts[hi])]);
        if (!rest.length) continue;
        pieces.push(storedPiece(rest.subarray(skip)));
        jsonBytes += rest.length - skip;
      }
      if (pieces.length) parts.push(Buffer.concat(pieces));
    }
    return { pieces: parts, jsonBytes };
  }

  /** Chunk c (built as `b`) deflated: its pieces joined (one fragment to send, not sixteen). */
  private deflatedChunk(b: Built, c: number, first: boolean): Buffer {
    const d = (this.deflatedChunks[c] ??= {});
    const join = () => Buffer.concat(Array.from({ length: Math.ceil((b.starts.length - 1) / PIECE) }, (_, p) => this.deflatedPiece(b, c, p, first && p === 0)));
    return first ? (d.first ??= join()) : (d.rest ??= join());
  }

  /** Piece p of chunk c (built as `b`), deflated. */
  private deflatedPiece(b: Built, c: number, p: number, first: boolean): Buffer {
    const g = c * (CHUNK / PIECE) + p;
    const d = (this.deflated[g] ??= {});
    const raw = () => b.bytes.subarray(b.starts[p * PIECE], b.starts[Math.min(b.starts.length - 1, (p + 1) * PIECE)]);
    return first ? (d.first ??= this.deflate(raw().subarray(1))) : (d.rest ??= this.deflate(raw()));
  }

  private chunk(c: number): Built {
    let b = this.chunks[c];
    if (b == null) {
      b = this.build(c);
      this.chunks[c] = b;
    }
    return b;
  }

  private build(c: number): Built {
    const entries = this.ids.slice(c * CHUNK, (c + 1) * CHUNK).map((id) => this.json.get(id)!);
    const starts = [0];
    for (const j of entries) starts.push(starts[starts.length - 1]! + 1 + Buffer.byteLength(j));
    return { bytes: Buffer.from(`,${entries.join(',')}`), starts };
  }

  private invalidate(id: number): void {
    const p = this.position.get(id);
    if (p === undefined) return;
    this.chunks[Math.floor(p / CHUNK)] = null;
    this.deflated[Math.floor(p / PIECE)] = undefined;
    this.deflatedChunks[Math.floor(p / CHUNK)] = undefined;
  }

  private reindex(): void {
    // Appends take the fast path in set(); this runs for deletes and out-of-order inserts.
    this.position.clear();
    this.ids.forEach((id, i) => this.position.set(id, i));
    this.chunks = new Array(Math.ceil(this.ids.length / CHUNK)).fill(null);
    this.deflated = [];
    this.deflatedChunks = [];
  }
}
