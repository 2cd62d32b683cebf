/** Node names: DNS labels derived from the reported hostname, unique within the deployment. */

/** Lowercase, [a-z0-9-] only, no leading/trailing dash, at most 63 characters; "node" if empty. */
export function sanitizeHostname(hostname: string): string {
  const label = hostname
    .toLowerCase()
    .split('.')[0]!
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/-+/g, '-')
    .replace(/^-|-$/g, '')
    .slice(0, 63)
    .replace(/-$/, '');
  return label || 'node';
}

/** `base` if free, else `base-1`, `base-2`, ...; `taken` holds the names already in use. */
export function uniqueName(base: string, taken: ReadonlySet<string>): string {
  if (!taken.has(base)) return base;
  for (let i = 1; ; i++) {
    const suffix = `-${i}`;
    const candidate = base.slice(0, 63 - suffix.length) + suffix;
    if (!taken.has(candidate)) return candidate;
  }
}
