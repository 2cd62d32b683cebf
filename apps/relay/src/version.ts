/** The relay's release, from apps/relay/package.json (one level above src/ and dist/ alike). */
import { readFileSync } from 'node:fs';

export const RELAY_VERSION: string = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
