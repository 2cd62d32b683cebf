/**
 * The realistic policy for `bench:control` (BENCH_POLICY=teams): teams of 100 nodes, each 10 users
 * with 5 devices (untagged) and 50 servers tagged `tag:svc-K`. A team's people reach each other on
 * 22 and their team's servers on anything; servers reach each other on 5432. So every node sees
 * 99 peers: devices 49 devices + 50 servers, servers 50 devices + 49 servers. Users have no email,
 * so the policy names them `name@`.
 */
export const TEAM_SIZE = 100;
const USERS_PER_TEAM = 10;
const DEVICES_PER_USER = 5;

export interface TeamPlan {
  teams: number;
  users: string[];
  /** Per node index: the auth key to join with (a user, or the team's tagged key). */
  keyOf: (i: number) => { user: string; tags: string[] };
  policy: string;
  /** The same plus one rule: group:team-0 may reach tag:svc-1 on 443 (100 nodes affected). */
  policyPlusOneRule: string;
}

export function teamPlan(nodes: number): TeamPlan {
  const teams = Math.max(2, Math.round(nodes / TEAM_SIZE));
  const users: string[] = [];
  const groups: Record<string, string[]> = {};
  const tagOwners: Record<string, string[]> = {};
  const acls: unknown[] = [];
  for (let k = 0; k < teams; k++) {
    const members = Array.from({ length: USERS_PER_TEAM }, (_, j) => `t${k}u${j}`);
    users.push(...members);
    groups[`group:team-${k}`] = members.map((u) => `${u}@`);
    tagOwners[`tag:svc-${k}`] = [`group:team-${k}`];
    acls.push({ action: 'accept', src: [`group:team-${k}`], dst: [`group:team-${k}:22`, `tag:svc-${k}:*`] });
    acls.push({ action: 'accept', src: [`tag:svc-${k}`], dst: [`tag:svc-${k}:5432`] });
  }
  const devices = USERS_PER_TEAM * DEVICES_PER_USER;
  const keyOf = (i: number) => {
    const k = Math.floor(i / TEAM_SIZE) % teams;
    const w = i % TEAM_SIZE;
    return w < devices ? { user: `t${k}u${Math.floor(w / DEVICES_PER_USER)}`, tags: [] } : { user: `t${k}u0`, tags: [`tag:svc-${k}`] };
  };
  const text = (extra: unknown[]) => JSON.stringify({ groups, tagOwners, acls: [...acls, ...extra] }, null, 1);
  return {
    teams,
    users,
    keyOf,
    policy: text([]),
    policyPlusOneRule: text([{ action: 'accept', src: ['group:team-0'], dst: ['tag:svc-1:443'] }]),
  };
}
