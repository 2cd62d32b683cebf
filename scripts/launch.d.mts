/** True when `dist/inputs.json` exists and every source it lists still has the mtime it was built from. */
export function bundleCurrent(appDir: URL): boolean;
/** Runs the app's bundle when current, else its TypeScript sources through tsx. */
export function launch(appDir: URL, name: string): Promise<void>;
