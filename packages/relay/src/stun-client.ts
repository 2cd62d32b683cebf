/**
 * A Binding client (RFC 8489 §6.2): one request, retransmitted over UDP with a doubling RTO, that
 * resolves to the reflexive address the server saw. Used by tests and benchmarks now, by the
 * agent's netcheck later.
 */
import { randomBytes } from 'node:crypto';
import { createSocket, type Socket } from 'node:dgram';
import { isIPv6 } from 'node:net';
import { decodeMappedAddress, decodeXorMappedAddress, type MappedAddress } from './stun-address.js';
import {
  ATTR_ERROR_CODE,
  ATTR_MAPPED_ADDRESS,
  ATTR_SOFTWARE,
  ATTR_XOR_MAPPED_ADDRESS,
  CLASS_ERROR_RESPONSE,
  CLASS_REQUEST,
  CLASS_SUCCESS_RESPONSE,
  METHOD_BINDING,
  RTO_INITIAL_MS,
  TRANSACTION_ID_LENGTH,
} from './stun-constants.js';
import { encodeMessage, getAttribute, parseMessage } from './stun-message.js';

/** A Binding request with a fresh transaction ID (and FINGERPRINT, so servers can tell it from other traffic). */
export function encodeBindingRequest(transactionId: Buffer = randomBytes(TRANSACTION_ID_LENGTH), software?: string): Buffer {
  const attributes = software ? [{ type: ATTR_SOFTWARE, value: Buffer.from(software, 'utf8') }] : [];
  return encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId, attributes, fingerprint: true });
}

export class StunError extends Error {
  constructor(message: string, readonly code?: number) {
    super(message);
  }
}

/**
 * The reflexive address from a Binding response to `transactionId`, or undefined when the
 * datagram is not that response. Throws StunError for an error response to it.
 */
export function readBindingResponse(datagram: Buffer, transactionId: Buffer): MappedAddress | undefined {
  const parsed = parseMessage(datagram);
  if (!parsed.ok) return undefined;
  const m = parsed.message;
  if (m.method !== METHOD_BINDING || !m.transactionId.equals(transactionId)) return undefined;
  if (m.cls === CLASS_ERROR_RESPONSE) {
    const e = getAttribute(m, ATTR_ERROR_CODE);
    const code = e && e.length >= 4 ? (e[2]! & 0x07) * 100 + e[3]! : undefined;
    throw new StunError(`STUN error response ${code ?? '(no ERROR-CODE)'}${e && e.length > 4 ? `: ${e.subarray(4).toString('utf8')}` : ''}`, code);
  }
  if (m.cls !== CLASS_SUCCESS_RESPONSE) return undefined;
  const xor = getAttribute(m, ATTR_XOR_MAPPED_ADDRESS);
  if (xor) return decodeXorMappedAddress(xor, m.transactionId);
  const plain = getAttribute(m, ATTR_MAPPED_ADDRESS);
  return plain ? decodeMappedAddress(plain) : undefined;
}

export interface BindingOptions {
  host: string;
  port: number;
  /** Send from this socket (e.g. to learn its mapping); default a fresh one, closed afterwards. */
  socket?: Socket;
  /** Give up after this long. Default 3 s. */
  timeoutMs?: number;
}

/** Sends a Binding request and resolves to the reflexive address; rejects on timeout or an error response. */
export async function bindingRequest(o: BindingOptions): Promise<MappedAddress> {
  const own = !o.socket;
  const socket = o.socket ?? createSocket(isIPv6(o.host) ? 'udp6' : 'udp4');
  const transactionId = randomBytes(TRANSACTION_ID_LENGTH);
  const request = encodeBindingRequest(transactionId);
  const timeoutMs = o.timeoutMs ?? 3000;
  try {
    return await new Promise<MappedAddress>((resolve, reject) => {
      let rto = RTO_INITIAL_MS;
      let retransmit: NodeJS.Timeout | undefined;
      const send = () => {
        socket.send(request, o.port, o.host);
        retransmit = setTimeout(send, rto);
        rto *= 2;
      };
      const done = (err: Error | undefined, value?: MappedAddress) => {
        clearTimeout(retransmit);
        clearTimeout(deadline);
        socket.off('message', onMessage);
        if (err) reject(err);
        else resolve(value!);
      };
      const onMessage = (msg: Buffer) => {
        try {
          const mapped = readBindingResponse(msg, transactionId);
          if (mapped) done(undefined, mapped);
        } catch (err) {
          done(err as Error);
        }
      };
      const deadline = setTimeout(() => done(new StunError(`no STUN Binding response from ${o.host}:${o.port} within ${timeoutMs} ms`)), timeoutMs);
      socket.on('message', onMessage);
      send();
    });
  } finally {
    if (own) socket.close();
  }
}
