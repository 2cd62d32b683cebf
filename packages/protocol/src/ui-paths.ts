/**
 * The admin UI's client-side routes: weft-server answers each with the UI's index.html, and the
 * UI's router knows no others, so the two cannot drift. Zod-free (a subpath of its own,
 * `@weft/protocol/ui-paths`), so the UI bundle carries none of the schemas.
 */
export const UI_PATHS = ['/', '/devices', '/pending', '/users', '/auth-keys', '/api-keys', '/policy', '/audit'] as const;
export type UiPath = (typeof UI_PATHS)[number];
