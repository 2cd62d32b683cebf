#!/usr/bin/env node
// `weft`. In the repository: the bundle in ../dist when current, else the TypeScript sources
// (scripts/launch.mjs). Installed from the packed package (`npm pack -w apps/agent`), which holds
// only bin/ and dist/: the bundle, which carries its npm dependencies.
import { existsSync } from 'node:fs';

const app = new URL('../', import.meta.url);
if (existsSync(new URL('src/main.ts', app))) {
  const { launch } = await import(new URL('../../scripts/launch.mjs', app).href);
  await launch(app, 'weft');
} else {
  await import(new URL('dist/weft.mjs', app).href);
}
