/**
 * The admin UI in Debian's Chromium against a real weft-server: sign in with the local admin
 * account (the server's sign-in page; a session cookie the page cannot read), see devices, approve a real pending login, delete a device through its confirmation,
 * revoke (expire) a connected device, offboard a user, and reach the nav and a dialog by keyboard (Escape closes it, Tab stays in it);
 * the dashboard's link counts (empty, then the simulated agents' reports), API keys' owners and SCIM tokens' label,
 * and a device's tags (refused with the server's reason, then saved).
 * Screenshots of each step go to e2e/ui/artifacts/ (gitignored).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { SimAgent } from '../../test-support/sim-agent.js';
import { cli, spawnServer, type ServerProcess } from '../../apps/server/test/support/process.js';
import { adminKey, ensureWebBuilt, launchChromium, rest, screenshotPath } from './browser.js';

const PASSWORD = 'correct horse battery staple';

describe('admin UI in Chromium', () => {
  let s: ServerProcess;
  let key: string;
  let browser: Browser;
  let page: Page;
  let pendingCode: string;
  const agents: SimAgent[] = [];
  /** Anything the browser refused (CSP) or failed to run. */
  const problems: string[] = [];

  beforeAll(async () => {
    ensureWebBuilt();
    s = await spawnServer();
    key = await adminKey(s);
    const set = await cli(['admin', 'set-password', '--data-dir', s.dataDir], { input: `${PASSWORD}\n` });
    expect(set.code, set.stderr).toBe(0);
    await rest(s, key, 'POST', '/api/v1/users', { name: 'alice' });
    await rest(s, key, 'POST', '/api/v1/users', { name: 'bob' });
    const authKey = (await rest<{ key: string }>(s, key, 'POST', '/api/v1/authkeys', { user: 'alice', reusable: true, tags: [] })).body.key;
    for (const host of ['alice-laptop', 'alice-desktop', 'alice-tablet']) {
      const a = new SimAgent(s.url, host);
      await a.register(authKey);
      agents.push(a);
    }
    await agents[0]!.connect();
    await agents[2]!.connect();
    const waiting = new SimAgent(s.url, 'bob-phone');
    const pending = await waiting.register();
    expect(pending.status).toBe('pending');
    pendingCode = (pending as { code: string }).code;
    browser = await launchChromium();
    page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('console', (m) => {
      if (m.type() === 'error') problems.push(m.text());
    });
    page.on('pageerror', (e) => problems.push(e.message));
  });
  afterAll(async () => {
    for (const a of agents) a.close();
    await browser?.close();
    await s?.stop();
  });

  it('signs in with the local admin account on the server\'s page (a cookie the page cannot read), and lists the devices', async () => {
    await page.goto(`${s.url}/devices`);
    await page.getByRole('link', { name: 'Sign in' }).click();
    await page.getByLabel('User name').fill('admin');
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    await page.getByRole('cell', { name: 'alice-desktop', exact: true }).waitFor();
    await page.screenshot({ path: screenshotPath('01-devices') });
    const rows = await page.getByTestId('devices').locator('tbody tr').allInnerTexts();
    expect(rows).toHaveLength(3);
    expect(rows.find((r) => r.includes('alice-laptop'))).toContain('online');
    const stored = await page.evaluate(() => ({ session: sessionStorage.length, local: localStorage.length, cookie: document.cookie, url: location.href }));
    expect(stored).toEqual({ session: 0, local: 0, cookie: '', url: `${s.url}/devices` });
    expect(await page.evaluate(() => [...document.scripts].filter((x) => !x.src).length)).toBe(0);
  });

  it('dashboard: no link reports yet says so; the simulated agents\' link reports are counted direct / relayed / no path / stale', async () => {
    await page.goto(`${s.url}/`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    await page.getByText('No link reports yet: links appear here once agents report them.').waitFor();
    expect(await page.getByTestId('links').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('01b-dashboard-no-links') });

    const [laptop, , tablet] = agents as [SimAgent, SimAgent, SimAgent];
    await laptop.waitFor(() => laptop.self !== null, 10_000, 'laptop netmap');
    await tablet.waitFor(() => tablet.self !== null, 10_000, 'tablet netmap');
    const stat = { endpoint: '192.0.2.10:51820', handshakeAgeS: 12, rxBytes: 1000, txBytes: 2000, stale: false };
    const desktopId = (await rest<{ items: { id: number }[] }>(s, key, 'GET', '/api/v1/nodes?q=alice-desktop')).body.items[0]!.id;
    laptop.send(JSON.stringify({ type: 'links', full: true, links: [
      { ...stat, peer: tablet.self!.id, path: 'direct' },
      { ...stat, peer: desktopId, path: 'none', endpoint: null, handshakeAgeS: 400, stale: true },
    ] }));
    tablet.send(JSON.stringify({ type: 'links', full: true, links: [{ ...stat, peer: laptop.self!.id, path: 'relay', endpoint: null }] }));
    await expect.poll(async () => (await rest<{ nodes: number }>(s, key, 'GET', '/api/v1/links/summary')).body.nodes, { timeout: 10_000 }).toBe(2);

    await page.reload();
    await page.getByTestId('links').waitFor();
    // '…' while the answer is on its way.
    const counts = async () => Object.fromEntries(await Promise.all(['direct', 'relay', 'none', 'stale'].map(async (k) => [k, await page.getByTestId(`links-${k}`).innerText()])));
    await expect.poll(counts, { timeout: 10_000 }).toEqual({ direct: '1', relay: '1', none: '1', stale: '1' });
    expect(await page.getByText('No link reports yet').count()).toBe(0);
    await page.screenshot({ path: screenshotPath('01c-dashboard-links') });
  });

  it('approves a waiting device as a device of a user', async () => {
    await page.getByRole('link', { name: 'Pending devices' }).click();
    await page.getByRole('cell', { name: pendingCode, exact: true }).waitFor();
    await page.getByRole('button', { name: 'Approve bob-phone' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.getByLabel('Owner').selectOption('bob');
    await page.screenshot({ path: screenshotPath('02-approve') });
    await dialog.getByRole('button', { name: 'Approve device' }).click();
    await page.getByText('No device is waiting').waitFor();
    const nodes = (await rest<{ items: { name: string; user: string }[] }>(s, key, 'GET', '/api/v1/nodes?q=bob-phone')).body.items;
    expect(nodes.map((n) => [n.name, n.user])).toEqual([['bob-phone', 'bob']]);
  });

  it('keyboard: the nav is reachable with Tab, Enter follows a link, and a dialog keeps focus and closes on Escape', async () => {
    await page.goto(`${s.url}/`);
    await page.getByRole('heading', { name: 'Dashboard' }).waitFor();
    let onDevices = false;
    for (let i = 0; i < 10 && !onDevices; i++) {
      await page.keyboard.press('Tab');
      onDevices = await page.evaluate(() => document.activeElement?.textContent === 'Devices' && document.activeElement.tagName === 'A');
    }
    expect(onDevices).toBe(true);
    const outline = await page.evaluate(() => getComputedStyle(document.activeElement!).outlineStyle);
    expect(outline).not.toBe('none');
    await page.keyboard.press('Enter');
    await page.getByRole('heading', { name: 'Devices' }).waitFor();
    expect(new URL(page.url()).pathname).toBe('/devices');

    const del = page.getByRole('button', { name: 'Delete alice-desktop' });
    await del.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    for (let i = 0; i < 5; i++) {
      await page.keyboard.press('Tab');
      expect(await page.evaluate(() => Boolean(document.activeElement?.closest('dialog')))).toBe(true);
    }
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    expect(await page.evaluate(() => document.activeElement?.getAttribute('aria-label'))).toBe('Delete alice-desktop');
    expect((await rest(s, key, 'GET', '/api/v1/nodes?q=alice-desktop')).body.total).toBe(1);
  });

  it('deletes a device only through the confirmation', async () => {
    await page.getByRole('button', { name: 'Delete alice-desktop' }).click();
    const dialog = page.getByRole('dialog', { name: 'Delete alice-desktop?' });
    await page.screenshot({ path: screenshotPath('03-delete-confirm') });
    await dialog.getByRole('button', { name: 'Delete device' }).click();
    await dialog.waitFor({ state: 'detached' });
    await page.getByRole('cell', { name: 'alice-desktop', exact: true }).waitFor({ state: 'detached' });
    expect((await rest(s, key, 'GET', '/api/v1/nodes?q=alice-desktop')).body.total).toBe(0);
  });

  it('revokes a device by expiring its key through the confirmation: its connection is cut, it shows expired, and the other devices stay', async () => {
    const tablet = agents[2]!;
    expect(tablet.closed).toBeNull();
    await page.getByRole('button', { name: 'Expire alice-tablet' }).click();
    const dialog = page.getByRole('dialog', { name: 'Expire alice-tablet?' });
    await page.screenshot({ path: screenshotPath('03b-expire-confirm') });
    await dialog.getByRole('button', { name: 'Expire key' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The list loads again after the action: the key is expired (nothing more to expire).
    await expect.poll(() => page.getByRole('button', { name: 'Expire alice-tablet' }).isDisabled(), { timeout: 10_000 }).toBe(true);
    await tablet.waitFor(() => tablet.closed !== null, 10_000, 'the expired device socket closed');
    // Loaded once its connection is gone (the page does not poll), the row says expired.
    await page.reload();
    const row = page.getByTestId('devices').locator('tbody tr').filter({ hasText: 'alice-tablet' });
    await expect.poll(() => row.innerText(), { timeout: 10_000 }).toContain('expired');
    const nodes = (await rest<{ items: { name: string; expired: boolean }[] }>(s, key, 'GET', '/api/v1/nodes?q=alice')).body.items;
    expect(nodes.map((n) => [n.name, n.expired]).sort()).toEqual([['alice-laptop', false], ['alice-tablet', true]]);
    expect(agents[0]!.closed).toBeNull();
  });

  it("a device's key expiry: extend, and disable only after a second confirmation", async () => {
    const id = (await rest<{ items: { id: number; expiresAt: string }[] }>(s, key, 'GET', '/api/v1/nodes?q=alice-laptop')).body.items[0]!;
    await page.getByRole('button', { name: 'Key expiry of alice-laptop' }).click();
    let dialog = page.getByRole('dialog', { name: 'Key expiry of alice-laptop' });
    await dialog.getByLabel('Extend by days (1-180)').fill('10');
    await dialog.getByRole('button', { name: 'Extend' }).click();
    await dialog.waitFor({ state: 'detached' });
    const extended = (await rest<{ expiresAt: string }>(s, key, 'GET', `/api/v1/nodes/${id.id}`)).body.expiresAt;
    expect(Date.parse(extended) - Date.parse(id.expiresAt)).toBe(10 * 86_400_000);
    await page.getByRole('button', { name: 'Key expiry of alice-laptop' }).click();
    dialog = page.getByRole('dialog', { name: 'Key expiry of alice-laptop' });
    await dialog.getByRole('button', { name: 'Disable expiry' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'never expires' }).waitFor();
    await page.screenshot({ path: screenshotPath('03b-disable-expiry-confirm') });
    expect((await rest<{ expiresAt: string | null }>(s, key, 'GET', `/api/v1/nodes/${id.id}`)).body.expiresAt).toBe(extended);
    await dialog.getByRole('button', { name: 'Yes, disable expiry' }).click();
    await dialog.waitFor({ state: 'detached' });
    expect((await rest<{ expiresAt: string | null }>(s, key, 'GET', `/api/v1/nodes/${id.id}`)).body.expiresAt).toBeNull();
  });

  it('approves a device waiting for an admin on the pending page; it leaves the list', async () => {
    expect((await rest(s, key, 'PATCH', '/api/v1/settings', { deviceApprovalRequired: true })).status).toBe(200);
    const bobKey = (await rest<{ key: string }>(s, key, 'POST', '/api/v1/authkeys', { user: 'bob' })).body.key;
    const tablet = new SimAgent(s.url, 'bob-tablet');
    agents.push(tablet);
    const res = await tablet.register(bobKey);
    expect(res).toMatchObject({ status: 'pending', approval: 'admin' });
    await page.getByRole('link', { name: 'Pending devices' }).click();
    const waiting = page.getByTestId('awaiting-approval');
    await waiting.getByRole('cell', { name: 'bob-tablet', exact: true }).waitFor();
    await page.screenshot({ path: screenshotPath('03c-awaiting-approval') });
    await waiting.getByRole('button', { name: 'Approve bob-tablet' }).click();
    await waiting.waitFor({ state: 'detached' });
    expect(await tablet.register(bobKey)).toMatchObject({ status: 'registered' });
    expect((await rest(s, key, 'PATCH', '/api/v1/settings', { deviceApprovalRequired: false })).status).toBe(200);
  });

  it('offboards a user through the confirmation: devices gone, status offboarded', async () => {
    await page.getByRole('link', { name: 'Users', exact: true }).click();
    // The suspend confirmation says all the server does and that it is reversible; cancelled, nothing changes.
    await page.getByRole('button', { name: 'Suspend alice' }).click();
    const suspend = page.getByRole('dialog', { name: 'Suspend alice?' });
    const said = await suspend.innerText();
    for (const part of ['cut off', 'until you resume them', 'auth keys', 'API keys they created', 'web sessions end', 'Resume brings the devices back']) expect(said).toContain(part);
    await page.screenshot({ path: screenshotPath('04a-suspend-confirm') });
    await suspend.getByRole('button', { name: 'Cancel' }).click();
    await suspend.waitFor({ state: 'detached' });
    expect((await rest<{ status: string }>(s, key, 'GET', '/api/v1/users/alice')).body.status).toBe('active');
    await page.getByRole('button', { name: 'Offboard alice' }).click();
    const dialog = page.getByRole('dialog', { name: 'Offboard alice?' });
    // It says all the server does (state/users.ts): devices deleted, auth keys and owned API keys revoked, web sessions ended, final.
    const text = await dialog.innerText();
    for (const said of ['Final', 'every device of the user is deleted', 'auth keys', 'API keys they created', 'web sessions end']) expect(text).toContain(said);
    await page.screenshot({ path: screenshotPath('04-offboard-confirm') });
    await dialog.getByRole('button', { name: 'Offboard alice' }).click();
    await page.getByRole('status').filter({ hasText: /^Offboard: alice \(\d+ devices?, \d+ auth keys? and \d+ API keys? revoked, \d+ web sessions? ended\)\.$/ }).waitFor();
    await page.screenshot({ path: screenshotPath('05-offboarded') });
    expect((await rest<{ status: string }>(s, key, 'GET', '/api/v1/users/alice')).body.status).toBe('offboarded');
    expect((await rest(s, key, 'GET', '/api/v1/nodes?q=alice')).body.total).toBe(0);
    await agents[0]!.waitFor(() => agents[0]!.closed !== null, 10_000, 'the offboarded device socket closed');
  });

  it('the audit log shows what the UI did, filtered by action', async () => {
    await page.getByRole('link', { name: 'Audit log' }).click();
    await page.getByLabel('Action').fill('user.offboard');
    await page.getByRole('button', { name: 'Apply' }).click();
    // The unfiltered page stays until the filtered answer replaces it.
    const rows = () => page.getByTestId('audit').locator('tbody tr').allInnerTexts();
    await expect.poll(async () => (await rows()).map((r) => /user\.offboard/.test(r) && r.includes('user:alice')), { timeout: 10_000 }).toEqual([true]);
    await page.screenshot({ path: screenshotPath('06-audit') });
  });

  it('auth keys: a created key is shown once and joins a machine; revoking it through the confirmation refuses the next join', async () => {
    await page.getByRole('link', { name: 'Auth keys' }).click();
    await page.getByRole('button', { name: 'Create auth key' }).click();
    const create = page.getByRole('dialog', { name: 'Create auth key' });
    await create.getByLabel('User').selectOption('bob');
    await create.getByLabel('Reusable').check();
    await create.getByRole('button', { name: 'Create' }).click();
    const shown = page.getByRole('dialog', { name: 'Auth key created' });
    const secret = await shown.getByTestId('secret').innerText();
    await page.screenshot({ path: screenshotPath('07-authkey-created') });
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'detached' });
    expect(await page.getByTestId('secret').count()).toBe(0);
    const listed = (await rest<{ items: { id: number; prefix: string; user: string; reusable: boolean; revoked: boolean }[] }>(s, key, 'GET', '/api/v1/authkeys')).body.items.filter((k) => secret.startsWith(k.prefix));
    expect(listed.map((k) => [k.user, k.reusable, k.revoked])).toEqual([['bob', true, false]]);
    const prefix = listed[0]!.prefix;
    expect((await new SimAgent(s.url, 'bob-ci').register(secret)).status).toBe('registered');

    await page.getByRole('button', { name: `Revoke ${prefix}` }).click();
    const confirm = page.getByRole('dialog', { name: `Revoke ${prefix}?` });
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await confirm.waitFor({ state: 'detached' });
    await page.getByRole('button', { name: `Revoke ${prefix}` }).waitFor({ state: 'detached' });
    const row = page.locator('tbody tr').filter({ hasText: prefix });
    expect(await row.innerText()).toContain('revoked');
    await expect(new SimAgent(s.url, 'bob-ci-2').register(secret)).rejects.toThrow(/register failed: 4\d\d/);
  });

  it('API keys: a created key is shown once and works; revoking it through the confirmation makes the server refuse it', async () => {
    await page.getByRole('link', { name: 'API keys' }).click();
    await page.getByRole('button', { name: 'Create API key' }).click();
    const create = page.getByRole('dialog', { name: 'Create API key' });
    await create.getByLabel('Description').fill('dashboards');
    await create.getByRole('button', { name: 'Create' }).click();
    const shown = page.getByRole('dialog', { name: 'API key created' });
    const secret = await shown.getByTestId('secret').innerText();
    await shown.getByRole('button', { name: 'Done' }).click();
    await shown.waitFor({ state: 'detached' });
    expect((await rest(s, secret, 'GET', '/api/v1/users')).status).toBe(200);
    expect((await rest(s, secret, 'POST', '/api/v1/users', { name: 'carol' })).status).toBe(403);
    const row = page.locator('tbody tr').filter({ hasText: 'dashboards' });
    expect(await row.innerText()).toContain('read');
    // Owner: the signed-in user made it; the key made from the admin socket has none.
    const keys = (await rest<{ items: { prefix: string; owner: string | null; description: string | null }[] }>(s, key, 'GET', '/api/v1/apikeys')).body.items;
    expect(keys.find((k) => k.description === 'dashboards')?.owner).toBe('admin');
    const header = await page.locator('thead th').allInnerTexts();
    const ownerCol = header.indexOf('Owner');
    expect(ownerCol).toBeGreaterThan(0);
    expect(await row.locator('td').nth(ownerCol).innerText()).toBe('admin');
    const socketKey = page.locator('tbody tr').filter({ hasText: keys.find((k) => k.owner === null && key.startsWith(k.prefix))!.prefix });
    expect(await socketKey.locator('td').nth(ownerCol).innerText()).toBe('—');
    const prefix = (await row.locator('td.mono').innerText()).trim();
    await page.getByRole('button', { name: `Revoke ${prefix}` }).click();
    const confirm = page.getByRole('dialog', { name: `Revoke ${prefix}?` });
    await page.screenshot({ path: screenshotPath('08-apikey-revoke-confirm') });
    await confirm.getByRole('button', { name: 'Revoke key' }).click();
    await confirm.waitFor({ state: 'detached' });
    await expect.poll(() => row.innerText()).toContain('revoked');
    expect((await rest(s, secret, 'GET', '/api/v1/users')).status).toBe(401);
  });

  it('API keys: a SCIM token is listed with its scope labelled as a SCIM provisioning token', async () => {
    const scim = (await rest<{ prefix: string }>(s, key, 'POST', '/api/v1/apikeys', { scopes: ['scim'], description: 'idp' })).body;
    await page.getByRole('link', { name: 'Dashboard' }).click();
    await page.getByRole('link', { name: 'API keys' }).click();
    const row = page.locator('tbody tr').filter({ hasText: scim.prefix });
    await row.waitFor();
    const header = await page.locator('thead th').allInnerTexts();
    expect(await row.locator('td').nth(header.indexOf('Scopes')).innerText()).toBe('scim (SCIM provisioning token)');
    expect(await row.locator('td').nth(header.indexOf('Owner')).innerText()).toBe('—');
    await page.screenshot({ path: screenshotPath('09-apikeys-scim') });
  });

  it("a device's tags: an undefined tag is refused in the dialog, naming it, and nothing changes; a defined one is saved and shown", async () => {
    // Allows everyone to everyone, so what the agents may see is as before; tag:web is defined for admins.
    const policy = JSON.stringify({ tagOwners: { 'tag:web': ['autogroup:admin'] }, acls: [{ action: 'accept', src: ['*'], dst: ['*:*'] }] });
    const etag = (await fetch(`${s.url}/api/v1/policy`, { headers: { authorization: `Bearer ${key}` } })).headers.get('etag')!;
    const put = await fetch(`${s.url}/api/v1/policy`, { method: 'PUT', headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', 'if-match': etag }, body: JSON.stringify({ text: policy }) });
    expect(put.status, await put.clone().text()).toBe(200);
    const tagsOf = async () => (await rest<{ items: { name: string; tags: string[] }[] }>(s, key, 'GET', '/api/v1/nodes?q=bob-phone')).body.items.map((n) => [n.name, n.tags]);
    expect(await tagsOf()).toEqual([['bob-phone', []]]);

    await page.getByRole('link', { name: 'Devices', exact: true }).click();
    const open = page.getByRole('button', { name: 'Tags of bob-phone' });
    await open.focus();
    await page.keyboard.press('Enter');
    const dialog = page.getByRole('dialog', { name: 'Tags of bob-phone' });
    const input = dialog.getByLabel(/^Tags/);
    await input.fill('tag:nope');
    await dialog.getByRole('button', { name: 'Save tags' }).click();
    await dialog.getByRole('alert').filter({ hasText: 'tag:nope' }).waitFor();
    await page.screenshot({ path: screenshotPath('10-tags-unknown') });
    expect(await tagsOf()).toEqual([['bob-phone', []]]);
    // Chromium logs the refused request as a failed resource: expected here, so not one of the problems the last test looks for.
    const refused = problems.findIndex((p) => /status of 422/.test(p));
    expect(refused).toBeGreaterThanOrEqual(0);
    problems.splice(refused, 1);

    await input.fill('tag:web');
    await dialog.getByRole('button', { name: 'Save tags' }).click();
    await dialog.waitFor({ state: 'detached' });
    const row = page.getByTestId('devices').locator('tbody tr').filter({ hasText: 'bob-phone' });
    await expect.poll(() => row.innerText(), { timeout: 10_000 }).toContain('tag:web');
    await page.screenshot({ path: screenshotPath('11-tags-saved') });
    expect(await tagsOf()).toEqual([['bob-phone', ['tag:web']]]);
  });

  it('signing out ends the session: back to sign in, the old cookie is refused; the browser refused nothing on the way', async () => {
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('link', { name: 'Sign in' }).waitFor();
    expect(await page.evaluate(async () => (await fetch('/api/v1/nodes', { credentials: 'same-origin' })).status)).toBe(401);
    // A 401 is logged by Chromium as a failed resource; CSP refusals, missing files (404) and script errors are not expected at all.
    expect(problems.filter((p) => !/status of 401/.test(p))).toEqual([]);
  });
});
