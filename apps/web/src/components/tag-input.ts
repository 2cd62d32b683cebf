/** Tags as typed into a dialog, checked by the server's own rule before anything is sent. */
import { isTagName, TAG_RULE } from '@weft/protocol/tags';

/** `tag:web, tag:db` or `tag:web tag:db` as the list the server takes (empty: no tags); case is kept (tag:Web is not tag:web). */
export function parseTags(text: string): string[] {
  return [...new Set(text.split(/[\s,]+/).filter((t) => t !== ''))];
}

/** The first entry that is not a tag name, as a message naming it; null when every one is. */
export function badTag(tags: string[]): string | null {
  const bad = tags.find((t) => !isTagName(t));
  return bad === undefined ? null : `tag ${JSON.stringify(bad)} must look like ${TAG_RULE}`;
}
