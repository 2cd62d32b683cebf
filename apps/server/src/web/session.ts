/** The web session a request carries, if any (cookie name per web/cookies.ts). */
import type { FastifyRequest } from 'fastify';
import type { SessionUser, State } from '../state/index.js';
import { readCookie, sessionCookieName } from './cookies.js';

export interface RequestSession { token: string; user: SessionUser }

/** The session cookie's value, or undefined; says nothing about whether it is valid. */
export const sessionTokenOf = (req: FastifyRequest) => readCookie(req, sessionCookieName(req));

export async function sessionOf(req: FastifyRequest, state: State): Promise<RequestSession | null> {
  const token = sessionTokenOf(req);
  if (!token) return null;
  const user = await state.sessions.authenticate(token);
  return user ? { token, user } : null;
}
