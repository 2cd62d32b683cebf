/**
 * The admin UI's policy editor in Debian's Chromium against a real weft-server whose identity
 * provider is the in-suite OIDC provider (apps/server/test/support/oidc-provider.ts): sign in over
 * OIDC, see an invalid policy's problems at their line and column and reach them by keyboard
 * (nothing stored), save a valid one and see its version, a stale save refused with an offer to
 * reload, and the history's diff and rollback through a confirmation. Screenshots go to e2e/ui/artifacts/ (gitignored).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { spawnServer, type ServerProcess } from '../../apps/server/test/support/process.js';
import { TestOidcProvider } from '../../apps/server/test/support/oidc-provider.js';
import { adminKey, ensureWebBuilt, launchChromium, rest, screenshotPath } from './browser.js';

const GOOD = `{
  "tagOwners": { "tag:db": [] },
  "acls": [
    // ops reach the database
    { "action": "accept", "src": ["olga@"], "dst": ["tag:db:5432"] },
  ],
}
`;
// Line 3, column 35: the unknown group (the same text cli-policy.test checks the CLI with).
const BAD = '{\n  "acls": [\n    { "action": "accept", "src": ["group:ghosts"], "dst": ["tag:db:22"] },\n  ],\n  "tagOwners": { "tag:db": [] },\n}\n';

interface Active { version: number; text: string | null; author: { label: string } | null; restoredFrom: number | null }

describe('policy editor in Chromium, signed in over OIDC', () => {
  let idp: TestOidcProvider;
  let s: ServerProcess;
  let key: string;
  let browser: Browser;
  let page: Page;
  let configDir: string;
  const problems: string[] = [];
  const active = async () => (await rest<Active>(s, key, 'GET', '/api/v1/policy')).body;
  const editor = () => page.getByLabel('Policy text');

  beforeAll(async () => {
    ensureWebBuilt();
    idp = await TestOidcProvider.start();
    idp.user = { sub: 'idp-subject-ada', email: 'ada@example.com', email_verified: true, name: 'Ada Lovelace', preferred_username: 'ada', groups: ['eng', 'weft-admins'] };
    configDir = mkdtempSync(join(tmpdir(), 'weft-ui-oidc-'));
    const config = join(configDir, 'weft.json');
    writeFileSync(config, JSON.stringify({ oidcIssuer: idp.issuer, oidcClientId: idp.clientId, oidcAdminGroups: ['weft-admins'] }));
    s = await spawnServer({ WEFT_OIDC_CLIENT_SECRET: idp.clientSecret }, undefined, ['--config', config]);
    key = await adminKey(s);
    expect((await rest(s, key, 'POST', '/api/v1/users', { name: 'olga' })).status).toBe(201);
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
  });
  afterAll(async () => {
    await browser?.close();
    await s?.stop();
    await idp?.close();
    if (configDir) rmSync(configDir, { recursive: true, force: true });
  });

  it('signs in with the identity provider (OIDC code flow through the in-suite provider) and lands on the page asked for, signed in as an admin', async () => {
    await page.goto(`${s.url}/policy`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByRole('link', { name: 'Sign in with your identity provider' }).click();
    await page.getByRole('heading', { name: 'Access policy' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/policy');
    const who = await page.evaluate(async () => (await fetch('/auth/session', { credentials: 'same-origin' })).json());
    expect(who).toMatchObject({ user: { name: 'ada' }, role: 'admin', method: 'oidc' });
    // The provider's token exchange ran once, unrefused.
    expect([...idp.grants.values()].map((g) => g.used)).toEqual([true]);
    expect(idp.refusals).toEqual([]);
    await page.getByText('No policy is stored').waitFor();
    await page.getByText('No versions yet').waitFor();
    await page.screenshot({ path: screenshotPath('policy-01-signed-in-oidc') });
  });

  it('an invalid policy: Check shows each problem at its line and column, Enter on it puts the caret there, Tab leaves the editor; Save is refused and the active policy is unchanged', async () => {
    await editor().fill(BAD);
    await page.getByRole('button', { name: 'Check' }).click();
    const list = page.getByTestId('problems');
    await list.waitFor();
    const items = await list.locator('li').allInnerTexts();
    expect(items).toEqual(['Line 3, column 35: unknown group "group:ghosts"']);
    // The gutter marks line 3, and only it.
    expect(await page.locator('.gutter .ln.err').evaluateAll((els) => els.map((e) => (e as HTMLElement).dataset.line))).toEqual(['3']);
    // By keyboard: the problem is a button; Enter puts the caret at its line and column.
    await list.getByRole('button', { name: 'Line 3, column 35' }).focus();
    await page.keyboard.press('Enter');
    await expect.poll(() => page.getByTestId('caret').innerText()).toMatch(/^Line 3, column 35 /);
    expect(await page.evaluate(() => document.activeElement?.id)).toBe('policy-text');
    // Tab leaves the editor (it is a plain textarea: no focus trap) for Check.
    await page.keyboard.press('Tab');
    expect(await page.evaluate(() => document.activeElement?.textContent)).toBe('Check');
    await editor().focus();
    await page.screenshot({ path: screenshotPath('policy-02-invalid') });

    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('alert').filter({ hasText: 'Not saved: 1 problem' }).waitFor();
    expect(await list.locator('li').allInnerTexts()).toEqual(['Line 3, column 35: unknown group "group:ghosts"']);
    expect(await active()).toMatchObject({ version: 0, text: null });
    expect((await rest(s, key, 'GET', '/api/v1/policy/history')).body.items).toEqual([]);
  });

  it('a valid policy: Check says so, Save stores it and the page shows the new version, its author and the history entry', async () => {
    await editor().fill(GOOD);
    await page.getByRole('button', { name: 'Check' }).click();
    await page.getByTestId('check-ok').filter({ hasText: 'Valid' }).waitFor();
    expect(await page.getByTestId('problems').count()).toBe(0);
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('status').filter({ hasText: 'Saved: version 1 is in force.' }).waitFor();
    await expect.poll(() => page.getByTestId('policy-meta').innerText()).toContain('version 1 by user:ada');
    const stored = await active();
    expect(stored).toMatchObject({ version: 1, text: GOOD, author: { label: 'user:ada' } });
    const rows = page.getByTestId('policy-history').locator('tbody tr[data-version]');
    await expect.poll(() => rows.allInnerTexts()).toHaveLength(1);
    expect((await rows.first().innerText())).toMatch(/^1\s*active/);
    expect(await page.getByText('Unsaved changes').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('policy-03-saved') });
  });

  it('a stale edit: someone else saved meanwhile, Save is refused with who did it, and Reload brings their version', async () => {
    await editor().fill(GOOD.replace('5432', '5433'));
    const theirs = GOOD.replace('// ops reach the database', '// ops reach the database (changed elsewhere)');
    const put = await fetch(`${s.url}/api/v1/policy`, { method: 'PUT', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'if-match': '"1"' }, body: JSON.stringify({ text: theirs }) });
    expect(put.status).toBe(200);
    await page.getByRole('button', { name: 'Save' }).click();
    const alert = page.getByRole('alert').filter({ hasText: 'the policy changed while you were editing' });
    await alert.waitFor();
    expect(await alert.innerText()).toMatch(/Version 2 was saved by apikey:weft-api-[0-9a-f]+ .*; you edited version 1\./);
    await page.screenshot({ path: screenshotPath('policy-04-conflict') });
    expect(await active()).toMatchObject({ version: 2, text: theirs });
    await alert.getByRole('button', { name: 'Reload the current policy' }).click();
    await alert.waitFor({ state: 'detached' });
    await expect.poll(() => page.getByTestId('policy-meta').innerText()).toContain('version 2 by apikey:');
    expect(await editor().inputValue()).toBe(theirs);
  });

  it('history: a version\'s diff, and rollback only through its confirmation (Escape cancels), making a new version with the old text', async () => {
    const rows = page.getByTestId('policy-history').locator('tbody tr[data-version]');
    await expect.poll(() => rows.count()).toBe(2);
    await page.getByRole('button', { name: 'Show diff of version 2' }).click();
    const diff = page.locator('#diff-2 .diff');
    await diff.waitFor();
    expect(await diff.locator('.add').allInnerTexts()).toEqual([expect.stringContaining('(changed elsewhere)')]);
    expect(await diff.locator('.del').allInnerTexts()).toEqual([expect.stringContaining('// ops reach the database')]);
    await page.screenshot({ path: screenshotPath('policy-05-diff') });

    await page.getByRole('button', { name: 'Roll back to version 1' }).click();
    const dialog = page.getByRole('dialog', { name: 'Roll back to version 1?' });
    await dialog.waitFor();
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect((await active()).version).toBe(2);

    await page.getByRole('button', { name: 'Roll back to version 1' }).click();
    await page.screenshot({ path: screenshotPath('policy-06-rollback-confirm') });
    await dialog.getByRole('button', { name: 'Roll back to version 1' }).click();
    await page.getByRole('status').filter({ hasText: 'Rolled back: version 3 (the text of version 1) is in force.' }).waitFor();
    expect(await active()).toMatchObject({ version: 3, text: GOOD, restoredFrom: 1 });
    expect(await editor().inputValue()).toBe(GOOD);
    await expect.poll(() => rows.count()).toBe(3);
    // The browser refused nothing (CSP) and no script failed on the way. Chromium logs as failed
    // resources the answers that were meant to fail: /auth/session before signing in (401) and the
    // refused saves above (422, 412).
    expect(problems.filter((p) => !/status of (401|412|422) /.test(p))).toEqual([]);
  });
});
