/**
 * Reading a server message one peer entry at a time. The envelope (type, seq, self, remove) must
 * be valid or the whole message is dropped; a peer entry (in `peers`, `upsert` or `patch`) that
 * fails the protocol schema, or that WireGuard could not be given, is left out and reported, so
 * one malformed peer never stops the others from being applied. Pure.
 */
import { inflateRawSync } from 'node:zlib';
import { describeIssue, MAX_INFLATED_NETMAP_BYTES, MAX_WG_RESPONDERS, type ResumeMessage, Peer, PeerPatch, ResponderPeer, ServerMessageEnvelope, type DeltaMessage, type ServerMessage } from '@weft/protocol';
import { normalizeEndpoint, normalizePeer } from '@weft/wg';
import { peerConfig } from './engine.js';

/** A peer entry left out of what the agent applies. */
export interface SkippedPeer {
  /** The entry's id when it had a usable one. */
  id: number | null;
  /** One line: which field and what is wrong with it. */
  reason: string;
}

export type ReadServerMessage =
  | { ok: true; msg: ServerMessage; skipped: SkippedPeer[] }
  | { ok: false; reason: string };

/**
 * A control message's JSON text. A binary message is a compressed netmap or resume (we send
 * NETMAP_ENCODING_HEADER): raw deflate, inflated to at most `maxBytes`, so a small message that
 * would inflate to gigabytes (a deflate bomb) is refused like any other malformed message.
 */
export function messageText(data: Buffer, isBinary: boolean, maxBytes = MAX_INFLATED_NETMAP_BYTES): { ok: true; text: string } | { ok: false; reason: string } {
  if (!isBinary) return { ok: true, text: data.toString() };
  try {
    return { ok: true, text: inflateRawSync(data, { maxOutputLength: maxBytes }).toString() };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') return { ok: false, reason: `compressed message inflates to more than ${maxBytes} bytes` };
    return { ok: false, reason: `compressed message is not a whole raw deflate stream: ${(err as Error).message}` };
  }
}

export function readServerMessage(json: unknown): ReadServerMessage {
  const env = ServerMessageEnvelope.safeParse(json);
  if (!env.success) return { ok: false, reason: describeIssue(env.error) };
  const skipped: SkippedPeer[] = [];
  if (env.data.type === 'netmap') {
    const peers = keep(env.data.peers, checkPeer, skipped);
    const { wgResponders, ...netmap } = env.data;
    return { ok: true, msg: { ...netmap, peers, ...validResponders(wgResponders) }, skipped };
  }
  if (env.data.type === 'resume') {
    const { wgResponders, patch, ...resume } = env.data;
    // The compact form's endpoints are positional (no id to skip one by): the protocol schema
    // checks them strictly (Endpoint), and a bad one refuses the message.
    const msg: ResumeMessage = { ...resume, ...validResponders(wgResponders) };
    if (patch) msg.patch = keep(patch, checkPatch, skipped);
    return { ok: true, msg, skipped };
  }
  const { upsert, patch, ...rest } = env.data;
  const msg: DeltaMessage = { ...rest };
  if (upsert) msg.upsert = keep(upsert, checkPeer, skipped);
  if (patch) msg.patch = keep(patch, checkPatch, skipped);
  return { ok: true, msg, skipped };
}

/** A responder entry that is not valid is left out: it only feeds the server's view of our NAT. */
function validResponders(entries: unknown[] | undefined): { wgResponders?: ResponderPeer[] } {
  const responders = (entries ?? []).flatMap((r) => {
    const p = ResponderPeer.safeParse(r);
    return p.success ? [p.data] : [];
  }).slice(0, MAX_WG_RESPONDERS);
  return responders.length ? { wgResponders: responders } : {};
}

type Check<T> = { ok: true; value: T } | { ok: false; skipped: SkippedPeer };

function keep<T>(entries: unknown[], check: (raw: unknown) => Check<T>, skipped: SkippedPeer[]): T[] {
  const out: T[] = [];
  for (const raw of entries) {
    const r = check(raw);
    if (r.ok) out.push(r.value);
    else skipped.push(r.skipped);
  }
  return out;
}

function idOf(raw: unknown): number | null {
  const id = (raw as { id?: unknown } | null)?.id;
  return typeof id === 'number' && Number.isSafeInteger(id) ? id : null;
}

/** A peer as the protocol defines it and as WireGuard (via @weft/wg) would take it. */
export function checkPeer(raw: unknown): Check<Peer> {
  const r = Peer.safeParse(raw);
  if (!r.success) return { ok: false, skipped: { id: idOf(raw), reason: describeIssue(r.error) } };
  try {
    normalizePeer(peerConfig(r.data));
  } catch (err) {
    return { ok: false, skipped: { id: r.data.id, reason: printable((err as Error).message) } };
  }
  return { ok: true, value: r.data };
}

function checkPatch(raw: unknown): Check<PeerPatch> {
  const r = PeerPatch.safeParse(raw);
  if (!r.success) return { ok: false, skipped: { id: idOf(raw), reason: describeIssue(r.error) } };
  try {
    for (const e of r.data.endpoints ?? []) normalizeEndpoint(e);
  } catch (err) {
    return { ok: false, skipped: { id: r.data.id, reason: printable((err as Error).message) } };
  }
  return { ok: true, value: r.data };
}

/** Peers restored from disk get the same check: state written by an older agent may hold anything. */
export function checkPeers(peers: unknown[]): { peers: Peer[]; skipped: SkippedPeer[] } {
  const skipped: SkippedPeer[] = [];
  return { peers: keep(peers, checkPeer, skipped), skipped };
}

const printable = (s: string) => s.replace(/[^\x20-\x7e]/g, '?').slice(0, 200);
