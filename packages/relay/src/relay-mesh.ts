/**
 * The relay mesh between server replicas (HA): two nodes whose relay sockets landed on different
 * replicas behind one address still relay to each other, the replicas forwarding between
 * themselves. This file is the mesh's wire format and its authentication; RelayServer
 * (`addMeshLink`, `receiveMesh`) does the forwarding.
 *
 * Links are one-way, and each is authenticated by its receiver: replica A dials replica B with a
 * mesh token (below) and sends on that link only; B verifies the token before it accepts the
 * link and only reads from it. B's frames to A travel on the link B dialed, which A verified. So
 * each replica trusts only frames on links it authenticated (mutual authentication, one
 * direction at a time), and a replica never needs to trust what arrives on a link it dialed.
 *
 * Frames (one per WebSocket message):
 *   PRESENT  0x10 | node key (32) | node id (u32 BE)   a client with this key is connected here
 *   ABSENT   0x11 | node key (32)                       ...and is gone
 *   FORWARD  0x12 | dst key (32) | src node id (u32 BE) | slot (1) | src key (32) | packet
 * The bytes from `slot` on have the RECV_PACKET layout (slot = its type byte), so the receiving
 * replica delivers a forwarded packet without copying it. A sender replica announces every client
 * it holds when a link comes up, then each arrival and departure; a replica forgets what a link
 * announced when that link closes. The node id is the database's (replicas share one), so the
 * receiving replica asks its own `mayRelay(srcNodeId, dstNodeId)` before it delivers.
 *
 * Mesh token: `<replica id>.<unix ms>.<base64url HMAC-SHA256(secret, "weft relay mesh|" + id + "|" + ms)>`
 * with the secret every replica reads from the shared settings table. Accepted within a clock
 * skew window; a replayed token lets the replayer open a link that can only announce and forward
 * as a replica would, which is what holding the secret allows anyway (and the window bounds it).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export const MESH_PRESENT = 0x10;
export const MESH_ABSENT = 0x11;
export const MESH_FORWARD = 0x12;

const KEY = 32;
export const MESH_PRESENT_BYTES = 1 + KEY + 4;
export const MESH_ABSENT_BYTES = 1 + KEY;
/** FORWARD up to and including its src key: type, dst key, src node id, slot, src key. */
export const MESH_FORWARD_HEADER_BYTES = 1 + KEY + 4 + 1 + KEY;
/** Where the RECV_PACKET-shaped tail of a FORWARD starts. */
export const MESH_FORWARD_SLOT_AT = 1 + KEY + 4;

export type MeshFrame =
  | { type: typeof MESH_PRESENT; key: Buffer; nodeId: number }
  | { type: typeof MESH_ABSENT; key: Buffer }
  | { type: typeof MESH_FORWARD; dst: Buffer; srcNodeId: number; src: Buffer; tail: Buffer };

export function encodePresent(key: Uint8Array, nodeId: number): Buffer {
  const out = Buffer.allocUnsafe(MESH_PRESENT_BYTES);
  out[0] = MESH_PRESENT;
  out.set(key, 1);
  out.writeUInt32BE(nodeId, 1 + KEY);
  return out;
}

export function encodeAbsent(key: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESH_ABSENT_BYTES);
  out[0] = MESH_ABSENT;
  out.set(key, 1);
  return out;
}

/** A FORWARD of `body` from `src` (node `srcNodeId`) to `dst`: one copy of the body. */
export function encodeForward(dst: Uint8Array, srcNodeId: number, src: Uint8Array, body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(MESH_FORWARD_HEADER_BYTES + body.length);
  out[0] = MESH_FORWARD;
  out.set(dst, 1);
  out.writeUInt32BE(srcNodeId, 1 + KEY);
  out[MESH_FORWARD_SLOT_AT] = 0;
  out.set(src, MESH_FORWARD_SLOT_AT + 1);
  out.set(body, MESH_FORWARD_HEADER_BYTES);
  return out;
}

export type ReadMesh = { ok: true; frame: MeshFrame } | { ok: false; reason: string };

/** Reads a mesh frame (views into `data`, no copy). */
export function readMeshFrame(data: Buffer): ReadMesh {
  switch (data[0]) {
    case MESH_PRESENT:
      if (data.length !== MESH_PRESENT_BYTES) return { ok: false, reason: `mesh present frame of ${data.length} bytes, not ${MESH_PRESENT_BYTES}` };
      return { ok: true, frame: { type: MESH_PRESENT, key: data.subarray(1, 1 + KEY), nodeId: data.readUInt32BE(1 + KEY) } };
    case MESH_ABSENT:
      if (data.length !== MESH_ABSENT_BYTES) return { ok: false, reason: `mesh absent frame of ${data.length} bytes, not ${MESH_ABSENT_BYTES}` };
      return { ok: true, frame: { type: MESH_ABSENT, key: data.subarray(1, 1 + KEY) } };
    case MESH_FORWARD:
      if (data.length < MESH_FORWARD_HEADER_BYTES) return { ok: false, reason: `mesh forward frame of ${data.length} bytes is shorter than its ${MESH_FORWARD_HEADER_BYTES}-byte header` };
      return {
        ok: true,
        frame: { type: MESH_FORWARD, dst: data.subarray(1, 1 + KEY), srcNodeId: data.readUInt32BE(1 + KEY), src: data.subarray(MESH_FORWARD_SLOT_AT + 1, MESH_FORWARD_HEADER_BYTES), tail: data.subarray(MESH_FORWARD_SLOT_AT) },
      };
    default:
      return { ok: false, reason: `mesh frame type 0x${(data[0] ?? 0).toString(16).padStart(2, '0')} is unknown` };
  }
}

function meshMac(secret: Buffer, replicaId: string, ms: number): Buffer {
  return createHmac('sha256', secret).update(`weft relay mesh|${replicaId}|${ms}`).digest();
}

/** The token replica `replicaId` dials other replicas' mesh endpoint with, at time `nowMs`. */
export function meshToken(secret: Buffer, replicaId: string, nowMs: number): string {
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(replicaId)) throw new RangeError('a mesh replica id is 1-64 of A-Z a-z 0-9 _ -');
  return `${replicaId}.${nowMs}.${meshMac(secret, replicaId, nowMs).toString('base64url')}`;
}

export type MeshTokenCheck = { ok: true; replicaId: string } | { ok: false; reason: string };

/** Checks a mesh token: the secret's MAC, and a time within `maxSkewMs` of `nowMs`. */
export function verifyMeshToken(secret: Buffer, token: string, nowMs: number, maxSkewMs: number): MeshTokenCheck {
  const m = /^([A-Za-z0-9_-]{1,64})\.(\d{1,15})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (!m) return { ok: false, reason: 'mesh token is not <replica>.<ms>.<mac>' };
  const [, replicaId, msText, macText] = m as unknown as [string, string, string, string];
  const ms = Number(msText);
  if (Math.abs(nowMs - ms) > maxSkewMs) return { ok: false, reason: 'mesh token is outside the clock skew window' };
  const want = meshMac(secret, replicaId, ms);
  const got = Buffer.from(macText, 'base64url');
  if (got.length !== want.length || !timingSafeEqual(got, want)) return { ok: false, reason: 'mesh token MAC is wrong' };
  return { ok: true, replicaId };
}
