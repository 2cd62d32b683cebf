/**
 * Interactive logins: a device without an auth key gets a short code and a URL, and waits until a
 * person approves it in the browser or an admin runs `weft-server nodes approve CODE`.
 */
import { randomInt } from 'node:crypto';
import { nodeKeyFingerprint, parseNodePublicKey, type MachinePublicKey } from '@weft/crypto';
import type { PendingLogin, RegisterRequest, RegisterResponse } from '@weft/protocol';
import { ApiError, Errors } from '../errors.js';
import { rateLimited } from '../rate-limit.js';
import { insertNode, lockAllocation } from './allocate.js';
import { actorLabel, audit, SYSTEM, TX_OPTIONS, type Actor, type StateContext } from './context.js';
import { awaitingAdmin, selfDto, withUser } from './dto.js';
import { DAY_MS, type TailnetSettingsStore } from './tailnet-settings.js';
import { usableUserOrThrow } from './users.js';

/** No 0/O, 1/I/L: codes are read aloud and typed. */
const CODE_ALPHABET = 'ABCDEFGHJKMNPQRSTUVWXYZ23456789';

function newCode(): string {
  let s = '';
  for (let i = 0; i < 8; i++) s += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return `${s.slice(0, 4)}-${s.slice(4)}`;
}

/** Accepts "abcd-efgh", "ABCDEFGH", " ABCD EFGH ". */
export function normalizeCode(input: string): string {
  const s = input.toUpperCase().replace(/[^A-Z0-9]/g, '');
  return s.length === 8 ? `${s.slice(0, 4)}-${s.slice(4)}` : s;
}

/** Called just before a new pending login is created; throws (429) to refuse it. */
export type LoginAdmission = () => void;

/** Arbitrary constant naming the pending-login cap's lock in pg_advisory_xact_lock. */
const PENDING_LOGIN_LOCK = 0x77656675;

function pendingDto(p: { code: string; hostname: string; os: string | null; nodeKey: string; expiresAt: Date; nodeId: number | null }): PendingLogin {
  return { code: p.code, hostname: p.hostname, os: p.os, nodeKey: p.nodeKey, fingerprint: nodeKeyFingerprint(parseNodePublicKey(p.nodeKey)), expiresAt: p.expiresAt.toISOString(), approved: p.nodeId !== null };
}

export class Logins {
  constructor(private readonly ctx: StateContext, private readonly settings: TailnetSettingsStore) {}

  /**
   * A device without an auth key: starts its pending login, or answers a poll of it. `admit` is
   * asked only when a new row would be created (polling costs nothing); the deployment-wide cap
   * `maxPendingLogins` is checked under a lock, so replicas together never exceed it.
   */
  async startOrPoll(machineKey: MachinePublicKey, req: RegisterRequest, admit?: LoginAdmission): Promise<RegisterResponse> {
    const prisma = this.ctx.prisma;
    let pending = await prisma.pendingLogin.findUnique({ where: { machineKey } });
    if (pending?.nodeId) {
      const node = await prisma.node.findUnique({ where: { id: pending.nodeId }, include: withUser });
      await prisma.pendingLogin.delete({ where: { id: pending.id } });
      if (node?.approvalPending) return awaitingAdmin(this.ctx.serverUrl, node);
      if (node) return { status: 'registered', node: selfDto(node) };
      pending = null;
    }
    if (pending && pending.expiresAt.getTime() <= Date.now()) {
      await prisma.pendingLogin.delete({ where: { id: pending.id } });
      throw new ApiError(Errors.loginExpired, 'nobody approved this device in time; run `weft up` again');
    }
    if (!pending) {
      admit?.();
      pending = await this.create(machineKey, req);
    } else if (pending.nodeKey !== req.nodeKey || pending.hostname !== req.hostname || pending.os !== (req.os ?? null)) {
      pending = await prisma.pendingLogin.update({ where: { id: pending.id }, data: { nodeKey: req.nodeKey, hostname: req.hostname, os: req.os ?? null } });
    }
    return {
      status: 'pending',
      code: pending.code,
      loginUrl: `${this.ctx.serverUrl}/login/${pending.code}`,
      expiresAt: pending.expiresAt.toISOString(),
    };
  }

  private async create(machineKey: MachinePublicKey, req: RegisterRequest) {
    return this.ctx.prisma.$transaction(async (tx) => {
      await tx.$executeRawUnsafe(`SELECT pg_advisory_xact_lock(${PENDING_LOGIN_LOCK})`);
      const live = { expiresAt: { gt: new Date() } };
      if ((await tx.pendingLogin.count({ where: live })) >= this.ctx.maxPendingLogins) {
        const first = await tx.pendingLogin.findFirst({ where: live, orderBy: { expiresAt: 'asc' }, select: { expiresAt: true } });
        throw rateLimited('too many devices are waiting for approval on this server', ((first?.expiresAt.getTime() ?? Date.now()) - Date.now()) / 1000);
      }
      return tx.pendingLogin.create({
        data: { code: newCode(), machineKey, nodeKey: req.nodeKey, hostname: req.hostname, os: req.os ?? null, expiresAt: new Date(Date.now() + this.ctx.loginTimeoutS * 1000) },
      });
    }, TX_OPTIONS);
  }

  /** Deletes pending logins that expired more than `graceS` ago; returns how many. */
  async reapExpired(graceS: number): Promise<number> {
    return this.ctx.prisma.$transaction(async (tx) => {
      const { count } = await tx.pendingLogin.deleteMany({ where: { expiresAt: { lt: new Date(Date.now() - graceS * 1000) } } });
      if (count) await audit(tx, SYSTEM, 'login.reap-expired', null, { count });
      return count;
    });
  }

  async list(): Promise<PendingLogin[]> {
    const rows = await this.ctx.prisma.pendingLogin.findMany({ where: { expiresAt: { gt: new Date() } }, orderBy: { id: 'asc' } });
    return rows.map(pendingDto);
  }

  async get(code: string): Promise<PendingLogin> {
    const p = await this.ctx.prisma.pendingLogin.findUnique({ where: { code: normalizeCode(code) } });
    if (!p || p.expiresAt.getTime() <= Date.now()) throw new ApiError(Errors.loginNotFound, `no pending login with code ${normalizeCode(code)}; it may have expired`);
    return pendingDto(p);
  }

  /** What the browser approval page shows about a waiting device: its hostname, OS and keys, so the person can tell it is theirs. */
  async forApproval(code: string): Promise<{ code: string; hostname: string; os: string | null; machineKey: string; nodeKey: string; expiresAt: Date; approved: boolean }> {
    const p = await this.ctx.prisma.pendingLogin.findUnique({ where: { code: normalizeCode(code) } });
    if (!p || p.expiresAt.getTime() <= Date.now()) throw new ApiError(Errors.loginNotFound, `no pending login with code ${normalizeCode(code)}; it may have expired (run weft login again)`);
    return { code: p.code, hostname: p.hostname, os: p.os, machineKey: p.machineKey, nodeKey: p.nodeKey, expiresAt: p.expiresAt, approved: p.nodeId !== null };
  }

  /**
   * Approves the device as a node of `userName`; the waiting agent picks it up on its next poll.
   * `byAdmin`: an admin approved it (REST, CLI, an admin's browser session). When the tailnet
   * requires admin approval and a person who is not an admin confirmed a new device, the node is
   * created waiting for it (addresses allocated, in no netmap). A known machine logging in again
   * keeps its approval state.
   */
  async approve(actor: Actor, code: string, userName: string, opts: { byAdmin: boolean }): Promise<{ nodeId: number }> {
    const node = await this.ctx.prisma.$transaction(async (tx) => {
      const p = await tx.pendingLogin.findUnique({ where: { code: normalizeCode(code) } });
      if (!p || p.expiresAt.getTime() <= Date.now()) throw new ApiError(Errors.loginNotFound, `no pending login with code ${normalizeCode(code)}; it may have expired`);
      if (p.nodeId) return { id: p.nodeId };
      const user = await usableUserOrThrow(tx, userName);
      const existing = await tx.node.findUnique({ where: { machineKey: p.machineKey } });
      const settings = await this.settings.get(tx);
      const expiresAt = new Date(Date.now() + settings.nodeKeyExpiryDays * DAY_MS);
      const approvalPending = settings.deviceApprovalRequired && !opts.byAdmin;
      let n;
      if (existing) {
        // Re-authentication (an expired node logging in again): same node, same addresses, fresh
        // key and expiry; one whose expiry an admin disabled keeps it disabled.
        n = await tx.node.update({
          where: { id: existing.id },
          data: { nodeKey: p.nodeKey, hostname: p.hostname, expiresAt: existing.expiresAt === null ? null : expiresAt, expiryHandledAt: null, userId: user.id },
          include: withUser,
        });
      } else {
        await lockAllocation(tx);
        n = await insertNode(this.ctx, tx, { userId: user.id, hostname: p.hostname, nodeKey: p.nodeKey, machineKey: p.machineKey, tags: [], ephemeral: false, authKeyId: null, expiresAt, approvalPending });
      }
      await tx.pendingLogin.update({ where: { id: p.id }, data: { nodeId: n.id, approvedBy: actorLabel(actor) } });
      await audit(tx, actor, 'node.approve', `node:${n.name}`, { code: p.code, user: user.name, ipv4: n.ipv4, ...(n.approvalPending ? { approvalPending: true } : {}) });
      await this.ctx.record(tx, { kind: 'nodes-upserted', nodeIds: [n.id] });
      return n;
    }, TX_OPTIONS);
    this.ctx.emit({ kind: 'nodes-upserted', nodeIds: [node.id] });
    return { nodeId: node.id };
  }
}
