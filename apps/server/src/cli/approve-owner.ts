/**
 * Whose device is `weft-server nodes approve CODE`? `weft up` prints that command without a user
 * (the device does not know who its owner is), so it has to work as printed: with one user the
 * device is theirs; with several, a person at a terminal is asked which; a script is told the
 * exact commands to choose from.
 */
import { createInterface } from 'node:readline/promises';
import type { PendingLogin, User } from '@weft/protocol';
import { terminalSafe } from '@weft/protocol/terminal-text';
import { UsageError } from './args.js';
import { call, type Target } from './client.js';

/** Asks a person one question; undefined when nobody can answer (not a terminal). */
export type Prompt = (question: string) => Promise<string | undefined>;

export const ttyPrompt: Prompt = async (question) => {
  if (!process.stdin.isTTY || !process.stderr.isTTY) return undefined;
  const rl = createInterface({ input: process.stdin, output: process.stderr });
  try {
    return await rl.question(question);
  } finally {
    rl.close();
  }
};

/** How many users a non-interactive error lists as ready-made commands. */
const LISTED_USERS = 10;

export async function ownerOf(t: Target, code: string, reach: string, ask: Prompt): Promise<string> {
  const { items: users } = await call<{ items: User[] }>(t, 'GET', '/api/v1/users');
  if (users.length === 0) throw new UsageError(`there are no users yet; create the device's owner first, then approve:\n  weft-server users create NAME${reach}\n  weft-server nodes approve ${code} --user NAME${reach}`);
  if (users.length === 1) return users[0]!.name;
  // Fails here, before any question, if the code is wrong or has expired.
  const login = await call<PendingLogin>(t, 'GET', `/api/v1/logins/${encodeURIComponent(code)}`);
  const names = users.map((u) => u.name);
  const device = `${terminalSafe(login.hostname)} (${login.code})`;
  for (let tries = 0; tries < 3; tries++) {
    const answer = (await ask(`Which user owns ${device}? One of: ${names.join(', ')}\nUser: `))?.trim();
    if (answer === undefined) break;
    if (answer === '') throw new UsageError('no user given; nothing was approved');
    if (names.includes(answer)) return answer;
    process.stderr.write(`There is no user "${terminalSafe(answer)}".\n`);
  }
  const shown = names.slice(0, LISTED_USERS).map((n) => `  weft-server nodes approve ${login.code} --user ${n}${reach}`);
  if (names.length > LISTED_USERS) shown.push(`  (and ${names.length - LISTED_USERS} more: weft-server users list${reach})`);
  throw new UsageError(`${device} could belong to any of ${names.length} users; approve it as one of them:\n${shown.join('\n')}`);
}
