/**
 * Why a peer is not direct, from both sides' netcheck verdicts (issue 9, "What the person sees"):
 * this node's own (its background netcheck) and the peer's as the server passed it on (`Peer.nat`).
 */
import { describe, expect, it } from 'vitest';
import type { NodePublicKey } from '@weft/crypto';
import type { NatVerdict } from '@weft/protocol';
import type { PeerStats } from '@weft/wg';
import { silentLogger } from '../../src/log.js';
import { natReason } from '../../src/path-choice.js';
import { PeerPaths } from '../../src/peer-paths.js';
import { fakeEngine, peer, self, stubRelay } from './fixtures.js';

const OPEN: NatVerdict = { udp: true, mappingVariesByDestination: false };
const UNKNOWN: NatVerdict = { udp: true, mappingVariesByDestination: null };
const VARIES: NatVerdict = { udp: true, mappingVariesByDestination: true };
const BLOCKED: NatVerdict = { udp: false, mappingVariesByDestination: null };

describe('natReason', () => {
  it('both endpoint-dependent: says it once, "peer too"', () => {
    expect(natReason(VARIES, VARIES)).toBe("this node's NAT maps each destination to a new port (endpoint-dependent); peer too");
  });

  it('both blocked: "peer too"', () => {
    expect(natReason(BLOCKED, BLOCKED)).toBe('UDP to the internet is blocked here; peer too');
  });

  it('different obstacles on the two sides: each named', () => {
    expect(natReason(VARIES, BLOCKED)).toBe("this node's NAT maps each destination to a new port (endpoint-dependent); the peer's UDP is blocked");
    expect(natReason(BLOCKED, VARIES)).toBe("UDP to the internet is blocked here; the peer's NAT maps each destination to a new port (endpoint-dependent)");
  });

  it('only this side: this node\'s words alone, whatever the peer reported or not', () => {
    for (const peerNat of [OPEN, UNKNOWN, null, undefined]) {
      expect(natReason(VARIES, peerNat)).toBe("this node's NAT maps each destination to a new port (endpoint-dependent)");
      expect(natReason(BLOCKED, peerNat)).toBe('UDP to the internet is blocked here');
    }
  });

  it('only the peer\'s side: the peer\'s words alone, also before this node\'s first netcheck', () => {
    for (const selfNat of [OPEN, UNKNOWN, undefined]) {
      expect(natReason(selfNat, VARIES)).toBe("the peer's NAT maps each destination to a new port (endpoint-dependent)");
      expect(natReason(selfNat, BLOCKED)).toBe("the peer's UDP is blocked");
    }
  });

  it('nothing in the way (or nothing known): no reason', () => {
    expect(natReason(OPEN, OPEN)).toBeNull();
    expect(natReason(UNKNOWN, OPEN)).toBeNull();
    expect(natReason(undefined, undefined)).toBeNull();
    expect(natReason(OPEN, null)).toBeNull();
  });
});

describe('PeerPaths reason for a relayed peer', () => {
  it('names the peer\'s NAT from its netmap entry and follows a patch of it', async () => {
    const { device, engine } = fakeEngine();
    let p2 = { ...peer(2), nat: VARIES };
    await engine.applyFull(self, [p2]);
    device.stats = async (): Promise<PeerStats[]> => [{ publicKey: p2.nodeKey as NodePublicKey, endpoint: device.peers.get(p2.nodeKey)?.endpoint ?? null, rxBytes: 0, txBytes: 0, lastHandshake: null }];
    let now = 1_000_000;
    const paths = new PeerPaths({
      engine: () => engine, peers: () => [p2], relay: stubRelay(), forced: () => false,
      selfKey: () => self.nodeKey, selfPublicIp: () => undefined, punchingHopeless: () => true,
      selfNat: () => VARIES, log: silentLogger, now: () => now,
    });
    now += 250;
    await paths.check();
    expect(paths.view(p2.nodeKey)).toMatchObject({ via: 'relay', reason: expect.stringContaining("this node's NAT maps each destination to a new port (endpoint-dependent); peer too") });
    p2 = { ...p2, nat: BLOCKED };
    expect(paths.view(p2.nodeKey)?.reason).toContain("this node's NAT maps each destination to a new port (endpoint-dependent); the peer's UDP is blocked");
  });
});
