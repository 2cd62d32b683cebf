import type { z } from 'zod';

/**
 * The first problem of a failed parse as one printable line, `path: message`, e.g.
 * `endpoints[0]: IPv4 address: octet 1 is 999, outside 0-255`. Server close reasons and agent
 * status lines use it; a schema dump is never shown.
 */
export function describeIssue(error: z.ZodError): string {
  const issue = error.issues[0];
  if (!issue) return 'invalid';
  const path = issue.path.map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i ? '.' : ''}${String(p)}`)).join('');
  return `${path ? `${path}: ` : ''}${issue.message}`.replace(/[^\x20-\x7e]/g, '?');
}
