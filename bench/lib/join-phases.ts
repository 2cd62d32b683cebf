/**
 * Where a join's time goes, read from the timestamps the daemon and the server already log (JSON
 * lines): each phase is the ms from the `weft up` start to the first log line that marks it.
 */

/** Daemon log message -> phase name, in the order a join passes them. */
const AGENT_MARKS: Array<[phase: string, match: (msg: string, fields: Record<string, unknown>) => boolean]> = [
  ['upRequested', (m) => m === 'up requested'],
  ['wireguardGoStarted', (m) => m === 'wireguard-go started'],
  ['registered', (m) => m === 'registered'],
  ['controlOpen', (m) => m === 'control connection open'],
  ['netmapReceived', (m) => m === 'netmap received'],
  ['interfaceConfigured', (m) => m === 'interface configured'],
  ['peersApplied', (m, f) => m === 'netmap applied' && Number(f.peers) > 0],
];

export type Phases = Record<string, number>;

function parse(line: string): { t: number; msg: string; fields: Record<string, unknown> } | null {
  if (!line.startsWith('{')) return null;
  try {
    const j = JSON.parse(line) as Record<string, unknown>;
    const t = typeof j.time === 'number' ? j.time : Date.parse(String(j.time));
    if (!Number.isFinite(t)) return null;
    return { t, msg: String(j.msg ?? ''), fields: j };
  } catch {
    return null;
  }
}

/**
 * Phases from the joining daemon's log lines and the server's lines logged during the join:
 * agent marks above, plus the server's register request (received, completed) and the agent
 * WebSocket upgrade it received.
 */
export function joinPhases(t0EpochMs: number, agentLines: readonly string[], serverLines: readonly string[]): Phases {
  const out: Phases = {};
  for (const line of agentLines) {
    const e = parse(line);
    if (!e) continue;
    for (const [phase, match] of AGENT_MARKS) {
      if (out[phase] === undefined && match(e.msg, e.fields)) out[phase] = e.t - t0EpochMs;
    }
  }
  let registerReq: string | undefined;
  for (const line of serverLines) {
    const e = parse(line);
    if (!e) continue;
    const req = e.fields.req as { method?: string; url?: string } | undefined;
    if (e.msg === 'incoming request' && req?.url === '/agent/v1/register' && out.serverRegisterIn === undefined) {
      out.serverRegisterIn = e.t - t0EpochMs;
      registerReq = String(e.fields.reqId);
    } else if (e.msg === 'request completed' && registerReq !== undefined && e.fields.reqId === registerReq && out.serverRegisterDone === undefined) {
      out.serverRegisterDone = e.t - t0EpochMs;
    } else if (e.msg === 'incoming request' && req?.url === '/agent/v1' && out.serverUpgradeIn === undefined) {
      out.serverUpgradeIn = e.t - t0EpochMs;
    }
  }
  return out;
}
