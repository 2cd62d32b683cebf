/**
 * The server's release, from apps/server/package.json. Read beside the running code: this file
 * is src/version.ts under tsx and part of dist/weft-server.mjs in the bundle, and both sit one
 * level below the package root.
 */
import { readFileSync } from 'node:fs';

export const SERVER_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
