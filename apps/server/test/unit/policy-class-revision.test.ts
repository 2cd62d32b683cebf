/**
 * Per view class revisions (mapper/policy-views.ts): each class's revision is the sum of the
 * stable hashes of the nodes its list holds, kept incrementally through node changes and policy
 * changes. Checked after every step of random change sequences against the sum computed from
 * scratch over the node's visible peers (and itself when its class sees it), and against fresh
 * views built from the same nodes (a restart, another replica).
 */
import { describe, expect, it } from 'vitest';
import { parsePolicy } from '@weft/policy';
import { addMod128, revisionHex } from '@weft/crypto';
import { stableHash } from '../../src/mapper/list-revision.js';
import { SharedList } from '../../src/mapper/shared-list.js';
import { PolicyNetmaps } from '../../src/mapper/policy-views.js';
import { peerDto, type NodeWithUser } from '../../src/state/index.js';

const USERS = ['ann@example.com', 'bob@example.com', 'cid@example.com'];
const TAGS = ['tag:web', 'tag:db'];

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 2 ** 32);
}

function row(id: number, r: () => number, gen = 0): NodeWithUser {
  const tagged = r() < 0.4;
  const user = USERS[Math.floor(r() * USERS.length)]!;
  return {
    id, name: `n${id}-${gen}`, nodeKey: `nodekey:${id.toString(16).padStart(64, '0')}`, ipv4: `100.64.0.${id}`, ipv6: `fd7a:115c:a1e0::${id}`,
    tags: tagged ? [TAGS[Math.floor(r() * TAGS.length)]!] : [], user: { name: user, suspendedAt: null },
    endpoints: [], reflexiveEndpoint: null, online: false, lastSeen: null,
  } as unknown as NodeWithUser;
}

const POLICIES = [
  { acls: [{ action: 'accept', src: ['group:a'], dst: ['tag:web:443'] }, { action: 'accept', src: ['tag:web'], dst: ['tag:db:5432'] }] },
  { acls: [{ action: 'accept', src: ['group:a'], dst: ['tag:web:443'] }, { action: 'accept', src: ['autogroup:member'], dst: ['autogroup:self:*'] }] },
  { acls: [{ action: 'accept', src: ['*'], dst: ['tag:db:*'] }] },
].map((p) => JSON.stringify({ groups: { 'group:a': ['ann@example.com', 'bob@example.com'] }, tagOwners: { 'tag:web': [], 'tag:db': [] }, ...p }));

describe('per view class revisions', () => {
  for (const seed of [1, 2, 3, 4, 5, 6]) {
    it(`match a sum from scratch after every change (seed ${seed})`, () => {
      const r = rng(seed);
      const rows = new Map<number, NodeWithUser>();
      for (let id = 1; id <= 12; id++) rows.set(id, row(id, r));
      const list = new SharedList();
      const json = new Map<number, string>();
      const put = (x: NodeWithUser) => {
        const p = peerDto(x);
        json.set(x.id, JSON.stringify(p));
        list.set(p, json.get(x.id)!, true);
      };
      for (const x of rows.values()) put(x);
      let policy = parsePolicy(POLICIES[0]!);
      let nm = new PolicyNetmaps(policy, rows.values(), (id) => json.get(id), null, (id) => list.hashOf(id));
      const check = (step: string) => {
        const fresh = new PolicyNetmaps(policy, rows.values(), (id) => json.get(id), null, (id) => list.hashOf(id));
        for (const id of rows.keys()) {
          const cls = nm.views.classOf(id);
          let sum = 0n;
          for (const x of cls ? cls.view.keys() : []) sum = addMod128(sum, stableHash(peerDto(rows.get(x)!)));
          expect(nm.revisionOf(id), `${step}: node ${id}`).toBe(revisionHex(sum));
          expect(fresh.revisionOf(id), `${step}: node ${id}, fresh views`).toBe(revisionHex(sum));
          expect(nm.listOf(id), `${step}: node ${id}`).toEqual(nm.peersOf(id));
        }
      };
      // Every node's netmap built once, as connected sessions would (the class lists exist).
      for (const id of rows.keys()) nm.netmap(id);
      check('start');
      let next = 13;
      for (let step = 0; step < 40; step++) {
        const roll = r();
        const ids = [...rows.keys()];
        const pick = ids[Math.floor(r() * ids.length)]!;
        if (roll < 0.25) {
          // A node changes user or tags (may move classes), or is renamed (a stable field).
          const x = r() < 0.5 ? row(pick, r, step) : { ...rows.get(pick)!, name: `renamed-${step}` };
          rows.set(pick, x);
          put(x);
          nm.views.upsert({ id: x.id, login: x.tags.length ? null : x.user.name, tags: [...x.tags].sort(), ipv4: x.ipv4, ipv6: x.ipv6 });
          nm.collect(new Set([pick]), rows.keys());
        } else if (roll < 0.45 && rows.size > 3) {
          rows.delete(pick);
          list.delete(pick);
          json.delete(pick);
          nm.views.remove(pick);
          nm.collect(new Set(), rows.keys());
        } else if (roll < 0.7) {
          const x = row(next++, r);
          rows.set(x.id, x);
          put(x);
          nm.views.upsert({ id: x.id, login: x.tags.length ? null : x.user.name, tags: [...x.tags].sort(), ipv4: x.ipv4, ipv6: x.ipv6 });
          nm.collect(new Set([x.id]), rows.keys());
          nm.netmap(x.id);
        } else if (roll < 0.85) {
          policy = parsePolicy(POLICIES[Math.floor(r() * POLICIES.length)]!);
          if (!nm.update(policy, rows.keys())) nm = new PolicyNetmaps(policy, rows.values(), (id) => json.get(id), nm, (id) => list.hashOf(id));
        } else {
          // A volatile change (a patch): no revision moves.
          const before = [...rows.keys()].map((id) => nm.revisionOf(id));
          const x = { ...rows.get(pick)!, online: true, endpoints: ['192.0.2.1:41641'] } as NodeWithUser;
          rows.set(pick, x);
          put(x);
          nm.refresh(pick);
          expect([...rows.keys()].map((id) => nm.revisionOf(id))).toEqual(before);
        }
        check(`step ${step}`);
      }
    });
  }

  it('a policy change that changes a node\'s view changes its revision', () => {
    const r = rng(9);
    const rows = new Map<number, NodeWithUser>();
    for (let id = 1; id <= 10; id++) rows.set(id, row(id, r));
    const list = new SharedList();
    const json = new Map<number, string>();
    for (const x of rows.values()) {
      json.set(x.id, JSON.stringify(peerDto(x)));
      list.set(peerDto(x), json.get(x.id)!, true);
    }
    const a = new PolicyNetmaps(parsePolicy(POLICIES[0]!), rows.values(), (id) => json.get(id), null, (id) => list.hashOf(id));
    const b = new PolicyNetmaps(parsePolicy(POLICIES[2]!), rows.values(), (id) => json.get(id), null, (id) => list.hashOf(id));
    for (const id of rows.keys()) {
      const same = a.peersOf(id).join() === b.peersOf(id).join() && !!a.views.classOf(id)?.view.has(id) === !!b.views.classOf(id)?.view.has(id);
      expect(a.revisionOf(id) === b.revisionOf(id), `node ${id}`).toBe(same);
    }
  });
});
