/**
 * Reading one agent->server WebSocket message. A refusal carries a one-line reason that names
 * what was wrong (`endpoints[1]: port is 0, outside 1-65535`), short enough for a close frame.
 */
import { AgentMessage, CloseCode, describeIssue, MAX_AGENT_MESSAGE_BYTES } from '@weft/protocol';

/** A WebSocket close reason is at most 123 bytes of UTF-8 (RFC 6455 5.5). */
const MAX_CLOSE_REASON_BYTES = 123;

/** `code`: the close code for the refusal (TooBig for an oversize message, else BadMessage). */
export type ReadAgentMessage = { ok: true; msg: AgentMessage } | { ok: false; code: number; reason: string };

export function readAgentMessage(data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean): ReadAgentMessage {
  if (isBinary) return { ok: false, code: CloseCode.BadMessage, reason: 'binary messages are not agent messages' };
  const text = Buffer.isBuffer(data) ? data.toString() : Array.isArray(data) ? Buffer.concat(data).toString() : Buffer.from(data).toString();
  // The WebSocket server admits relay frames (larger), so the agent channel's own limit is checked here.
  if (Buffer.byteLength(text) > MAX_AGENT_MESSAGE_BYTES) return { ok: false, code: CloseCode.TooBig, reason: `message is over ${MAX_AGENT_MESSAGE_BYTES} bytes` };
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return { ok: false, code: CloseCode.BadMessage, reason: 'message is not JSON' };
  }
  const r = AgentMessage.safeParse(json);
  return r.success ? { ok: true, msg: r.data } : { ok: false, code: CloseCode.BadMessage, reason: closeReason(describeIssue(r.error)) };
}

/** Cut to what a close frame can carry. Input is ASCII by then, so bytes = characters. */
function closeReason(text: string): string {
  return text.length <= MAX_CLOSE_REASON_BYTES ? text : `${text.slice(0, MAX_CLOSE_REASON_BYTES - 3)}...`;
}
