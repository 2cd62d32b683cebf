/**
 * Who may open `/agent/v1`: decided before the WebSocket upgrade, so a refused agent gets an HTTP
 * status with problem+json (401 bad or unknown machine token, 410 expired node, 403
 * `user_suspended` while the node's user is suspended, 403 `node_pending_approval` until an admin
 * approves it) instead of a 101
 * followed by a close. Close codes stay for what happens after the upgrade.
 */
import type { FastifyRequest } from 'fastify';
import { ApiError, Errors } from '../errors.js';
import { isExpired, type NodeWithUser, type State } from '../state/index.js';
import { machineKeyFrom } from './register-route.js';

const authenticated = new WeakMap<FastifyRequest, NodeWithUser>();

/**
 * Where the door finds a node by machine key before asking the database: the mapper's table, as of
 * every change this replica has applied (`settled` first). A node it does not know yet (its
 * change is still on the way) is read from the database. A cut-off made on another replica is
 * enforced here once this replica has followed it (the bus lag); a session let in meanwhile is
 * closed by the mapper when the change arrives, as every session of that node is.
 */
export interface KnownNodes {
  settled(): Promise<void>;
  nodeByMachineKey(machineKey: string): NodeWithUser | undefined;
}

/** A `preValidation` hook: throws the ApiError that refuses the upgrade, or remembers the node. */
export async function authenticateAgent(state: State, req: FastifyRequest, known?: KnownNodes): Promise<void> {
  try {
    authenticated.set(req, await authenticateMachine(state, req.headers.authorization, known));
  } catch (err) {
    req.log.info({ err: (err as Error).message }, 'agent refused');
    throw err;
  }
}

/**
 * The node an `Authorization: Bearer <machine token>` header proves, or the ApiError that refuses
 * it (the same checks for `/agent/v1`, `/api/v1/relay` and a standalone relay's clients).
 */
export async function authenticateMachine(state: State, authorization: string | undefined, known?: KnownNodes): Promise<NodeWithUser> {
  const machineKey = await machineKeyFrom(authorization);
  if (known) await known.settled();
  const node = known?.nodeByMachineKey(machineKey) ?? (await state.nodes.byMachineKey(machineKey));
  if (!node) throw new ApiError(Errors.machineUnauthorized, 'no node has this machine key; run weft up');
  if (isExpired(node)) throw new ApiError(Errors.nodeExpired, 'node key expired; run weft up');
  if (node.user.suspendedAt) throw new ApiError(Errors.userSuspended, `user ${node.user.name} is suspended; the device reconnects once an admin resumes them`);
  if (node.approvalPending) throw new ApiError(Errors.nodePendingApproval, `this device waits for an admin to approve it: weft-server nodes approve ${node.id}`);
  return node;
}

/** The node `authenticateAgent` let in on this request. */
export function agentNode(req: FastifyRequest): NodeWithUser | undefined {
  return authenticated.get(req);
}
