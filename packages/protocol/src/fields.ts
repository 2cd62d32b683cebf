/**
 * Building blocks every request schema is made of, so a class of bad input is refused in one
 * place: strings that Postgres `text` cannot store, numbers that Postgres `int4` cannot hold.
 * Responses may use plain zod types; requests use these.
 */
import { z } from 'zod';

/** Largest value of a Postgres `int4` column (every id is one). */
export const INT4_MAX = 2 ** 31 - 1;

/** The one NUL check; request schemas carry this exact check object (a unit test walks them for it). */
export const NO_NUL = z.refine<string>((s) => !s.includes('\0'), { message: 'must not contain NUL characters (U+0000)' });

/** A request string: any text Postgres can store (no U+0000). Chain `.min()`, `.max()`, `.regex()`. */
export const text = () => z.string().check(NO_NUL);

/** A row id in a path: 1..2^31-1 (Postgres int4), from its decimal text. */
export const Id = z.coerce
  .number({ error: 'must be a number' })
  .int('must be a whole number')
  .min(1, 'must be at least 1')
  .max(INT4_MAX, `must be at most ${INT4_MAX}`);
