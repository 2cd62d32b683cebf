import type { z } from 'zod';
import { describe, expect, it } from 'vitest';
import {
  AgentMessage, ApprovePendingLogin, CodeParam, CreateApiKey, CreateAuthKey, CreateNode, CreateUser, Id, IdParam,
  INT4_MAX, NO_NUL, RegisterRequest, RenameNode, UserRefParam,
} from '../src/index.js';

/** Every schema a client sends: REST bodies and path params, and agent messages. */
const REQUESTS: Record<string, z.ZodType> = {
  CreateUser, CreateNode, RenameNode, CreateAuthKey, CreateApiKey, ApprovePendingLogin, IdParam, UserRefParam, CodeParam, RegisterRequest, AgentMessage,
};

interface Leaf { path: string; node: any }

/** Every string and number schema reachable from `schema`, with where it sits. */
function leaves(schema: any, path: string, out: Leaf[] = []): Leaf[] {
  const def = schema._zod.def;
  switch (def.type) {
    case 'string':
    case 'number':
      out.push({ path, node: schema });
      break;
    case 'object':
      for (const [k, v] of Object.entries(def.shape)) leaves(v, `${path}.${k}`, out);
      break;
    case 'array':
      leaves(def.element, `${path}[]`, out);
      break;
    case 'optional':
    case 'nullable':
    case 'default':
      leaves(def.innerType, path, out);
      break;
    case 'union':
      def.options.forEach((o: unknown, i: number) => leaves(o, `${path}|${i}`, out));
      break;
    case 'pipe':
      leaves(def.in, path, out);
      break;
    case 'boolean':
    case 'literal':
    case 'enum':
      break;
    default:
      throw new Error(`${path}: schema type ${def.type} is not walked; teach this test about it`);
  }
  return out;
}

const all = Object.entries(REQUESTS).flatMap(([name, s]) => leaves(s, name));

describe('request schemas refuse what Postgres cannot store', () => {
  it('walks a real set of fields', () => {
    expect(all.filter((l) => l.node._zod.def.type === 'string').length).toBeGreaterThan(15);
  });

  it.each(all.filter((l) => l.node._zod.def.type === 'string').map((l) => [l.path, l] as const))('%s refuses NUL', (_path, leaf) => {
    expect(leaf.node._zod.def.checks ?? []).toContain(NO_NUL);
  });

  /** Counters kept only inside a JSON column (node_links.links): bounded by what JSON numbers carry exactly. */
  const JSON_COUNTERS = new Set(['AgentMessage|2.links[].rxBytes', 'AgentMessage|2.links[].txBytes']);

  it('the JSON-only counters are fields that exist', () => {
    for (const path of JSON_COUNTERS) expect(all.some((l) => l.path === path)).toBe(true);
  });

  it.each(all.filter((l) => l.node._zod.def.type === 'number').map((l) => [l.path, l] as const))('%s is an int4 (or a safe integer kept in JSON)', (path, leaf) => {
    const checks = (leaf.node._zod.def.checks ?? []).map((c: any) => c._zod.def);
    expect(checks.some((c: any) => c.format === 'safeint')).toBe(true);
    const max = checks.find((c: any) => c.check === 'less_than');
    const min = checks.find((c: any) => c.check === 'greater_than');
    expect(max && max.value <= (JSON_COUNTERS.has(path) ? Number.MAX_SAFE_INTEGER : INT4_MAX)).toBe(true);
    expect(min && min.value >= 0).toBe(true);
  });

  it('an id at 2^31 is refused with a message naming the bound; 2^31-1 is accepted', () => {
    expect(Id.safeParse('2147483647').success).toBe(true);
    const r = IdParam.safeParse({ id: '2147483648' });
    expect(r.success).toBe(false);
    expect(r.error!.issues[0]).toMatchObject({ path: ['id'], message: 'must be at most 2147483647' });
    expect(IdParam.safeParse({ id: '0' }).success).toBe(false);
    expect(IdParam.safeParse({ id: '1.5' }).success).toBe(false);
  });

  it('a NUL in a display name is refused, naming the field', () => {
    const r = CreateUser.safeParse({ name: 'eve', displayName: 'E\0ve' });
    expect(r.error!.issues).toEqual([expect.objectContaining({ path: ['displayName'], message: 'must not contain NUL characters (U+0000)' })]);
  });
});
