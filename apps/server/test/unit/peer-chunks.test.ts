import { describe, expect, it } from 'vitest';
import { PeerChunks } from '../../src/mapper/peer-chunks.js';

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
});
