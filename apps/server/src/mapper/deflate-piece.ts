/**
 * Pieces of one raw deflate stream (RFC 1951) that are compressed apart and sent one after the
 * other: a compressed netmap is the shared peer chunks, each compressed once, between a head and
 * a tail compressed for that session. Each piece comes from a fresh compressor (so nothing in it
 * refers back to bytes before it) and ends with a sync flush (an empty stored block: the piece
 * ends on a byte boundary, its blocks are not final), so pieces concatenate into one stream; the
 * last piece of a message is finished instead (a final block), and inflating the whole gives the
 * texts of the pieces joined.
 */
import { constants, deflateRawSync } from 'node:zlib';

/** `text` as a piece to be followed by more. */
export function deflatePiece(text: string | Buffer): Buffer {
  return deflateRawSync(text, { finishFlush: constants.Z_SYNC_FLUSH });
}

/** `text` as the last piece: it ends the stream. */
export function deflateLast(text: string | Buffer): Buffer {
  return deflateRawSync(text);
}
