/**
 * Vitest wiring for a lab shared by one test file: created in beforeAll, torn down in afterAll
 * whatever happened, log tails printed the moment a test (or the setup) fails.
 */
import { afterAll, beforeAll, beforeEach } from 'vitest';
import { Lab, type LabOptions } from './lab.js';

export interface LabHandle<H extends string> {
  /** The lab; throws if read before beforeAll ran or after it failed. */
  readonly lab: Lab<H>;
}

/**
 * `setup` runs after the lab is built (start the server, join agents...); if it throws, the logs are
 * printed and the lab is still cleaned up.
 */
export function useLab<const H extends string>(opts: LabOptions<H>, setup?: (lab: Lab<H>) => Promise<void>): LabHandle<H> {
  let lab: Lab<H> | undefined;
  beforeAll(async () => {
    lab = await Lab.create(opts);
    if (setup) {
      try {
        await setup(lab);
      } catch (err) {
        lab.markFailed();
        lab.printLogTails();
        throw err;
      }
    }
  });
  beforeEach(({ onTestFailed }) => {
    onTestFailed(() => {
      if (!lab) return;
      lab.markFailed();
      lab.printLogTails();
    });
  });
  afterAll(async () => {
    await lab?.cleanup();
  });
  return {
    get lab(): Lab<H> {
      if (!lab) throw new Error(`lab ${opts.name} is not available (beforeAll did not run or failed)`);
      return lab;
    },
  };
}
