import { inflateRawSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { deflateLast, deflatePiece, storedPiece } from '../../src/mapper/deflate-piece.js';
import { PeerChunks } from '../../src/mapper/peer-chunks.js';

/** A compressed netmap's stream: a head, the list's pieces, a tail; inflated, one text. */
function inflated(head: string, pieces: Buffer[], tail: string): string {
  return inflateRawSync(Buffer.concat([deflatePiece(head), ...pieces, deflateLast(tail)])).toString();
}

/** The obviously-correct reference: join everything but `exclude`, in id order. */
function reference(map: Map<number, string>, exclude: number): string {
  return [...map.entries()].sort(([a], [b]) => a - b).filter(([id]) => id !== exclude).map(([, j]) => j).join(',');
}

describe('PeerChunks', () => {
  it('matches the reference join under random inserts, updates and deletes', () => {
    let seed = 42;
    const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
    const chunks = new PeerChunks();
    const model = new Map<number, string>();
    let nextId = 1;
    for (let step = 0; step < 3000; step++) {
      const op = rand(10);
      if (op < 5) {
        const id = rand(20) === 0 ? rand(nextId) + 1 : nextId++;
        const json = `{"id":${id},"v":${step}}`;
        chunks.set(id, json);
        model.set(id, json);
      } else if (op < 7 && model.size) {
        const id = [...model.keys()][rand(model.size)]!;
        chunks.delete(id);
        model.delete(id);
      } else if (model.size) {
        const id = [...model.keys()][rand(model.size)]!;
        const json = `{"id":${id},"v":${step}}`;
        chunks.set(id, json);
        model.set(id, json);
      }
      if (step % 50 === 0) {
        const ex = model.size ? [...model.keys()][rand(model.size)]! : 0;
        const parts = chunks.partsExcept(ex);
        expect(Buffer.concat(parts).toString()).toBe(reference(model, ex));
        expect(parts.every((p) => p.length > 0)).toBe(true);
        const d = chunks.deflatedExcept(ex);
        expect(inflated('[', d.pieces, ']')).toBe(`[${reference(model, ex)}]`);
        expect(d.jsonBytes).toBe(Buffer.byteLength(reference(model, ex)));
      }
    }
    expect(chunks.size).toBe(model.size);
  });

  it('leaves a node out without copying: every part is a view of the chunks a full list sends', () => {
    const chunks = new PeerChunks();
    // Entries large enough that each chunk is its own allocation, not a slice of Buffer's pool.
    for (let id = 1; id <= 600; id++) chunks.set(id, `{"id":${id},"pad":"${'x'.repeat(100)}"}`);
    const cached = new Set(chunks.partsExcept(0).map((p) => p.buffer));
    for (const ex of [1, 2, 256, 257, 300, 600]) {
      const parts = chunks.partsExcept(ex);
      expect(parts.every((p) => cached.has(p.buffer)), `excluding ${ex}`).toBe(true);
      expect(Buffer.concat(parts).toString()).not.toContain(`{"id":${ex},`);
    }
  });

  it('deflates once: the parts a netmap sends are the cached ones but for its own chunk', () => {
    const chunks = new PeerChunks();
    for (let id = 1; id <= 600; id++) chunks.set(id, `{"id":${id},"key":"nodekey:${id.toString(16).padStart(64, '0')}","pad":"${'x'.repeat(100)}"}`);
    const all = chunks.deflatedExcept(0);
    const cached = new Set(all.pieces);
    for (const ex of [1, 2, 17, 256, 257, 300, 600]) {
      const d = chunks.deflatedExcept(ex);
      const fresh = d.pieces.filter((p) => !cached.has(p));
      expect(fresh.length, `excluding ${ex}`).toBe(1); // its own chunk, joined for it
      const text = inflated('{"peers":[', d.pieces, ']}');
      expect(JSON.parse(text).peers.map((p: { id: number }) => p.id)).toEqual([...Array(600).keys()].map((i) => i + 1).filter((id) => id !== ex));
    }
    // Compressed once, the list is a fraction of its JSON.
    expect(all.pieces.reduce((n, p) => n + p.length, 0)).toBeLessThan(all.jsonBytes / 4);
  });

  it('a change to an entry re-deflates the one piece holding it (a storm patches every node once)', () => {
    const deflated: string[] = [];
    const chunks = new PeerChunks((text) => (deflated.push(text.toString()), deflatePiece(text)));
    for (let id = 1; id <= 600; id++) chunks.set(id, `{"id":${id}}`);
    chunks.deflatedExcept(0);
    expect(deflated.length).toBe(38); // 600 entries in pieces of 16
    deflated.length = 0;
    chunks.set(300, '{"id":300,"renamed":true}');
    expect(inflated('[', chunks.deflatedExcept(0).pieces, ']')).toContain('{"id":300,"renamed":true}');
    expect(deflated).toEqual([Array.from({ length: 16 }, (_, i) => (i + 289 === 300 ? '{"id":300,"renamed":true}' : `{"id":${i + 289}}`)).map((j) => `,${j}`).join('')]);
    deflated.length = 0;
    chunks.set(601, '{"id":601}');
    chunks.deflatedExcept(0);
    expect(deflated.length).toBe(1); // the last piece, ids 593..601
    deflated.length = 0;
    // Excluding a node compresses nothing: its own piece goes stored; every other is the cached one.
    chunks.deflatedExcept(300);
    expect(deflated.length).toBe(0);
  });

  it('stored pieces join deflated ones: any length, the last one ending the stream', () => {
    const big = Buffer.from('x'.repeat(70_000) + 'y'.repeat(70_000)); // past one stored block's 65,535 bytes
    for (const [head, tail] of [['{"a":', '1}'], ['', ''], [big.toString(), big.toString()]] as const) {
      const stream = Buffer.concat([storedPiece(head), deflatePiece(',"mid":2'), storedPiece(tail, true)]);
      expect(inflateRawSync(stream).toString()).toBe(`${head},"mid":2${tail}`);
    }
    expect(storedPiece('', false).length).toBe(0);
    // Not final: a stream of it alone is cut short.
    expect(() => inflateRawSync(storedPiece('abc'))).toThrow(/unexpected end/);
  });
});
