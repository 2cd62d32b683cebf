#!/usr/bin/env node
// `weft-relay`: the bundle in ../dist when current, else the TypeScript sources (scripts/launch.mjs).
import { launch } from '../../../scripts/launch.mjs';

await launch(new URL('../', import.meta.url), 'weft-relay');
