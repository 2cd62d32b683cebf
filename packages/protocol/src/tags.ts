/**
 * What a tag name is, everywhere Weft reads one (the wire schema, REST, the policy, the UI):
 * Tailscale's rule (tailcfg.CheckTag), so a policy written for Tailscale or Headscale names the
 * same tags here. `tag:`, an ASCII letter, then ASCII letters, digits and `-`; nothing else, no
 * length limit of its own, and case-sensitive: `tag:Web` and `tag:web` are two different tags,
 * neither is folded to the other. Zod-free (a subpath of its own, `@weft/protocol/tags`), so the
 * UI bundle carries none of the schemas.
 */
export const TAG_NAME = /^tag:[A-Za-z][A-Za-z0-9-]*$/;

/** The rule in words, for error messages. */
export const TAG_RULE = 'tag:name (a letter, then letters, digits and "-"; case-sensitive)';

export function isTagName(text: string): boolean {
  return TAG_NAME.test(text);
}
