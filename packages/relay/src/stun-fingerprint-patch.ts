/**
 * `FingerprintPatch`: the FINGERPRINT (RFC 8489 §14.7, CRC-32 of the message before it XOR
 * "STUN") of a fixed template changed only at a few known byte positions, without running CRC-32
 * over the message. The Binding template (stun-binding.ts) changes in 18 bytes per answer (the
 * transaction ID, the XORed port and address); a native crc32 call over 40 bytes, and the view it
 * needs, cost more than the rest of the answer.
 *
 * CRC-32 is affine over GF(2): for two messages of one length, crc(t ^ d) = crc(t) ^ crc(d) ^
 * crc(0...0). So the CRC of the template with byte p changed by d_p is the template's CRC XORed,
 * for each changed byte, with crc(d_p alone at p) ^ crc(zeros): one table of 256 such values per
 * position, made once.
 */
import { crc32 } from 'node:zlib';
import { FINGERPRINT_XOR } from './stun-constants.js';

export class FingerprintPatch {
  private readonly template: Buffer;
  private readonly positions: Int32Array;
  /** `positions.length` tables of 256: the CRC change for each value XORed into that byte. */
  private readonly tables: Int32Array;
  private readonly templateCrc: number;

  /** FINGERPRINTs over `template[0, end)` as it is, except at `positions` (each in [0, end)). */
  constructor(template: Buffer, end: number, positions: readonly number[]) {
    if (positions.some((p) => p < 0 || p >= end || !Number.isInteger(p))) throw new RangeError(`positions must lie in [0, ${end})`);
    this.template = Buffer.from(template.subarray(0, end));
    this.positions = Int32Array.from(positions);
    this.templateCrc = crc32(this.template) | 0;
    this.tables = new Int32Array(positions.length * 256);
    const zeros = Buffer.alloc(end);
    const zerosCrc = crc32(zeros);
    positions.forEach((p, i) => {
      // Linear in the byte: a value's entry is the XOR of its bits' entries.
      const bit = new Int32Array(8);
      for (let k = 0; k < 8; k++) {
        zeros[p] = 1 << k;
        bit[k] = crc32(zeros) ^ zerosCrc;
      }
      zeros[p] = 0;
      const t = i * 256;
      for (let v = 1; v < 256; v++) this.tables[t + v] = this.tables[t + (v & (v - 1))]! ^ bit[31 - Math.clz32(v & -v)]!;
    });
  }

  /** The FINGERPRINT value of the message at `message[at]`, which must equal the template in [0, end) outside `positions`. */
  of(message: Buffer, at = 0): number {
    let c = this.templateCrc;
    const { positions, tables, template } = this;
    for (let i = 0; i < positions.length; i++) {
      const p = positions[i]!;
      c ^= tables[i * 256 + (message[at + p]! ^ template[p]!)]!;
    }
    return (c ^ FINGERPRINT_XOR) >>> 0;
  }
}
