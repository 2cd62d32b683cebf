import { describe, expect, it } from 'vitest';
import { policyLogin } from '../../src/state/index.js';
import { liveNode } from '../../src/mapper/policy-views.js';
import type { NodeWithUser } from '../../src/state/index.js';

describe('how the access policy names users and nodes', () => {
  it('a user is their name when it holds an @, else name@ (Headscale form); never the unverified contact email', () => {
    expect(policyLogin({ name: 'odin@example.com' })).toBe('odin@example.com');
    expect(policyLogin({ name: 'odin', email: 'odin@example.com' } as { name: string })).toBe('odin@');
    expect(policyLogin({ name: 'odin' })).toBe('odin@');
  });
  it('a tagged node is not its user own (login null), tags sorted', () => {
    const row = { id: 3, tags: ['tag:web', 'tag:db'], ipv4: '100.64.0.3', ipv6: 'fd7a::3', user: { name: 'odin', email: null, suspendedAt: null } } as unknown as NodeWithUser;
    expect(liveNode(row)).toEqual({ id: 3, login: null, tags: ['tag:db', 'tag:web'], ipv4: '100.64.0.3', ipv6: 'fd7a::3' });
    expect(liveNode({ ...row, tags: [] } as NodeWithUser).login).toBe('odin@');
  });
});
