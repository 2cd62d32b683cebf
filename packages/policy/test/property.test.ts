/**
 * The engine against the naive reference on random policies and node sets (seeded, bounded). Any
 * difference in a node's rules or peers is a bug in one of them; the seed and case are in the name.
 */
import { describe, expect, it } from 'vitest';
import { compile, compileReference, parseNodes, parsePolicy } from '../src/index.js';
import { generate } from './random-inputs.js';

describe('engine matches the naive reference', () => {
  const CASES = 300;
  it(`on ${CASES} random policies and node sets (seeds 1..${CASES})`, () => {
    let nonTrivial = 0;
    for (let seed = 1; seed <= CASES; seed++) {
      const g = generate(seed);
      const policy = parsePolicy(g.policy);
      const nodes = parseNodes(g.nodes);
      const engine = compile(policy, nodes).compiled;
      const reference = compileReference(policy, nodes);
      expect(engine, `seed ${seed}\n${g.policy}\n${g.nodes}`).toEqual(reference);
      if (Object.values(engine.nodes).some((n) => n.rules.length && n.peers.length)) nonTrivial++;
    }
    // The generator must exercise something: most cases grant some access.
    expect(nonTrivial).toBeGreaterThan(CASES / 2);
  }, 120_000); // a budget for a loaded machine, not a timing assertion

  it('on 25 random policies over 64-250 nodes, addresses out of name order (the engine\'s large-set paths)', () => {
    for (let seed = 1; seed <= 25; seed++) {
      const g = generate(seed, { minNodes: 64, maxNodes: 250 });
      const policy = parsePolicy(g.policy);
      const nodes = parseNodes(g.nodes);
      expect(nodes.nodes.length).toBeGreaterThanOrEqual(64);
      expect(compile(policy, nodes).compiled, `seed ${seed}`).toEqual(compileReference(policy, nodes));
    }
  }, 120_000);

  it('output does not depend on the order nodes and users are listed in', () => {
    for (let seed = 1; seed <= 40; seed++) {
      const g = generate(seed);
      const policy = parsePolicy(g.policy);
      const input = JSON.parse(g.nodes) as { users: unknown[]; nodes: unknown[] };
      const shuffled = JSON.stringify({ users: [...input.users].reverse(), nodes: [...input.nodes].reverse() });
      const a = JSON.stringify(compile(policy, parseNodes(g.nodes)).compiled);
      expect(JSON.stringify(compile(policy, parseNodes(shuffled)).compiled), `seed ${seed}`).toBe(a);
      expect(JSON.stringify(compile(parsePolicy(g.policy), parseNodes(g.nodes)).compiled), `seed ${seed}`).toBe(a);
    }
  }, 120_000);

  it('with no policy, every node reaches every node', () => {
    for (let seed = 1; seed <= 30; seed++) {
      const nodes = parseNodes(generate(seed).nodes);
      const engine = compile(null, nodes).compiled;
      expect(engine).toEqual(compileReference(null, nodes));
      for (const n of nodes.nodes) expect(engine.nodes[n.name]!.peers).toHaveLength(nodes.nodes.length - 1);
    }
  }, 120_000);
});
