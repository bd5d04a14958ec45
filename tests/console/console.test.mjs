// The web console in a real browser (issue 16, DESIGN.md 9): Debian's Chromium driven by
// playwright-core against the real warden binary. Every step of the Service Accounts page is
// walked through the page as an admin, a developer and a viewer, by role and accessible name,
// and then checked against what the admin API holds. Also: text from the server stays text,
// a request from another origin cannot change state, and a generated token leaves no trace in
// the page or the browser's storage once its dialog is closed. A screenshot of each screen goes
// to $WARDEN_CONSOLE_SCREENSHOTS (docs/console/ holds the committed set).
//   node tests/console/console.test.mjs      (WARDEN_BINARY, WARDEN_SOURCE_DIR: see warden.mjs)
import {test, before, after} from 'node:test';
import assert from 'node:assert/strict';
import {createServer} from 'node:http';
import {existsSync, mkdirSync} from 'node:fs';
import path from 'node:path';
import {startWarden, client, login, eventually, SOURCE_DIR} from './warden.mjs';

const CHROMIUM = process.env.WARDEN_CHROMIUM || '/usr/bin/chromium';
let chromium;
try {
  ({chromium} = await import('playwright-core'));
} catch {
  chromium = null;
}
if (!chromium || !existsSync(CHROMIUM)) {
  const why = !chromium ? 'playwright-core is not installed (npm ci --prefix tests/console)' : `${CHROMIUM} is missing (apt-get install chromium)`;
  console.log(`console browser tests skipped: ${why}`);
  process.exit(process.env.WARDEN_CONSOLE_REQUIRED ? 1 : 77);
}

const SHOTS = process.env.WARDEN_CONSOLE_SCREENSHOTS || path.join(SOURCE_DIR, 'build/console-screenshots');
const ADMIN = {email: 'admin@localhost', password: 'admin-console-pw-1'};
const DEV = {email: 'dev@example.com', password: 'developer-pw-1'};
const VIEWER = {email: 'viewer@example.com', password: 'viewer-pw-1'};
const XSS = '<img src=x onerror=alert(1)>';

let warden, browser, admin;
const problems = [];  // page errors, CSP violations, alerts: none may happen

before(async () => {
  mkdirSync(SHOTS, {recursive: true});
  warden = await startWarden({adminPassword: ADMIN.password});
  admin = await login(warden.url, ADMIN.email, ADMIN.password);
  for (const [u, role] of [[DEV, 'developer'], [VIEWER, 'viewer']]) {
    const r = await admin.post('/v1/users', {email: u.email, name: role, role, password: u.password});
    assert.equal(r.status, 201, r.text);
  }
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage'],
  });
});

after(async () => {
  if (browser) await browser.close();
  if (warden) await warden.stop();
});

async function newPage() {
  const context = await browser.newContext({viewport: {width: 1280, height: 860}, baseURL: warden.url});
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], {origin: warden.url});
  const page = await context.newPage();
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));
  page.on('dialog', (d) => { problems.push(`browser dialog: ${d.message()}`); d.dismiss(); });
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (40[0-9]|415)/.test(m.text())) problems.push(`console error: ${m.text()}`);
  });
  return {context, page};
}

async function logIn(page, user) {
  await page.goto('/');
  await page.getByRole('textbox', {name: 'Email'}).fill(user.email);
  await page.getByRole('textbox', {name: 'Password'}).fill(user.password);
  await page.getByRole('button', {name: 'Log in'}).click();
  await page.getByRole('button', {name: 'Account menu'}).waitFor();
}

async function menuItems(page) {
  await page.getByRole('button', {name: 'Account menu'}).click();
  const menu = page.getByRole('menu', {name: 'Account menu'});
  await menu.waitFor();
  return menu.getByRole('menuitem').allTextContents();
}

async function shot(page, name) {
  await page.waitForTimeout(150);  // let the switch transitions finish
  await page.screenshot({path: path.join(SHOTS, `${name}.png`)});
}

// Everything a page holds that a token could hide in: the DOM with every control's value,
// and the browser's storage for the origin.
async function everythingStored(page) {
  return page.evaluate(async () => {
    const values = [...document.querySelectorAll('input, textarea, select')].map((e) => e.value);
    const idb = indexedDB.databases ? await indexedDB.databases() : [];
    const caches_ = 'caches' in window ? await caches.keys() : [];
    const all = (s) => Object.keys(s).map((k) => `${k}=${s.getItem(k)}`);
    return {
      dom: document.documentElement.outerHTML + values.join('\n'),
      local: all(localStorage).join('\n'),
      session: all(sessionStorage).join('\n'),
      indexedDB: idb.map((d) => d.name).join(','),
      caches: caches_.join(','),
      cookie: document.cookie,
    };
  });
}

const account = async (name) => (await admin.get(`/v1/service-accounts/${name}`)).json;
const accountPermissions = async (name) => (await admin.get(`/v1/service-accounts/${name}/permissions`)).json;

test('the console is served with its strict headers', async () => {
  const res = await fetch(`${warden.url}/`);
  assert.equal(res.status, 200);
  const csp = res.headers.get('content-security-policy');
  assert.match(csp, /script-src 'self'/);
  assert.match(csp, /frame-ancestors 'none'/);
  assert.doesNotMatch(csp, /unsafe-inline/);
  assert.equal(res.headers.get('x-content-type-options'), 'nosniff');
  assert.equal(res.headers.get('cache-control'), 'no-cache');
});

test('admin: log in, the Service Accounts list, Add New, switch, delete', async () => {
  const {context, page} = await newPage();
  await page.goto('/');
  await page.getByRole('textbox', {name: 'Email'}).waitFor();
  await shot(page, '01-login');
  // A wrong password is refused on the page.
  await page.getByRole('textbox', {name: 'Email'}).fill(ADMIN.email);
  await page.getByRole('textbox', {name: 'Password'}).fill('not-the-password');
  await page.getByRole('button', {name: 'Log in'}).click();
  await page.getByText('Wrong email or password.').waitFor();

  await logIn(page, ADMIN);
  await page.getByRole('heading', {name: 'Service Accounts'}).waitFor();
  // The avatar sits in the bottom right corner.
  const box = await page.getByRole('button', {name: 'Account menu'}).boundingBox();
  assert.ok(box.x > 1280 - 120 && box.y > 860 - 120, `avatar at ${box.x},${box.y}`);
  assert.deepEqual(await menuItems(page), ['Service Accounts', 'Users', 'Tenant', 'Log out']);
  await shot(page, '03-account-menu-admin');
  await page.keyboard.press('Escape');
  assert.equal(await page.getByRole('menu').isVisible(), false);

  // Add New, from a role; the account dialog opens on the new account.
  await page.getByRole('button', {name: 'Add New'}).click();
  let dialog = page.getByRole('dialog', {name: 'Add New Service Account'});
  await dialog.getByRole('textbox', {name: 'Name'}).fill('crm-sync');
  await dialog.getByRole('textbox', {name: 'Description'}).fill(`CRM nightly sync ${XSS}`);
  await dialog.getByRole('radio', {name: 'Role'}).check();
  await dialog.getByRole('combobox', {name: 'Role to copy'}).selectOption('csm');
  await shot(page, '04-add-new');
  await dialog.getByRole('button', {name: 'Create'}).click();
  await page.getByRole('dialog', {name: 'crm-sync'}).waitFor();
  let sa = await account('crm-sync');
  assert.equal(sa.description, `CRM nightly sync ${XSS}`);
  let perms = await accountPermissions('crm-sync');
  assert.equal(perms.copied_from.kind, 'role');
  assert.equal(perms.copied_from.name, 'csm');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog', {name: 'crm-sync'}).waitFor({state: 'detached'});

  // From scratch, and a copy of another account.
  for (const [name, kind] of [['billing-job', 'Start from scratch'], ['crm-sync-2', 'Service account']]) {
    await page.getByRole('button', {name: 'Add New'}).click();
    dialog = page.getByRole('dialog', {name: 'Add New Service Account'});
    await dialog.getByRole('textbox', {name: 'Name'}).fill(name);
    await dialog.getByRole('radio', {name: kind}).check();
    if (kind === 'Service account') await dialog.getByRole('combobox', {name: 'Service account to copy'}).selectOption('crm-sync');
    await dialog.getByRole('button', {name: 'Create'}).click();
    await page.getByRole('dialog', {name}).waitFor();
    await page.getByRole('dialog', {name}).getByRole('button', {name: 'Close'}).click();
  }
  assert.equal((await accountPermissions('billing-job')).copied_from.kind, 'scratch');
  assert.deepEqual((await accountPermissions('billing-job')).permissions, {});
  perms = await accountPermissions('crm-sync-2');
  assert.equal(perms.copied_from.kind, 'service_account');
  assert.equal(perms.copied_from.name, 'crm-sync');
  assert.deepEqual(perms.permissions, (await accountPermissions('crm-sync')).permissions);

  // A refused name is shown beside the field; nothing is created. The name is the XSS one.
  await page.getByRole('button', {name: 'Add New'}).click();
  dialog = page.getByRole('dialog', {name: 'Add New Service Account'});
  await dialog.getByRole('textbox', {name: 'Name'}).fill(XSS);
  await dialog.getByRole('button', {name: 'Create'}).click();
  await dialog.getByText('name must be 1-64 characters').waitFor();
  assert.equal(await dialog.getByRole('textbox', {name: 'Name'}).getAttribute('aria-invalid'), 'true');
  await page.keyboard.press('Escape');
  assert.equal((await admin.get('/v1/service-accounts')).json.items.length, 3);

  // The list: name, description (server text stays text), enabled, tokens, last used.
  const row = page.getByRole('row', {name: /crm-sync CRM nightly/});
  await row.getByText(`CRM nightly sync ${XSS}`).waitFor();
  assert.equal(await page.locator('img').count(), 0);
  const cells = await row.getByRole('cell').allTextContents();
  assert.deepEqual(cells.slice(0, 5).map((c) => c.trim()), ['crm-sync', `CRM nightly sync ${XSS}`, '', '0', 'Never']);
  await shot(page, '02-service-accounts');

  // The switch disables and enables at once.
  const toggle = page.getByRole('switch', {name: 'Enabled crm-sync', exact: true});
  assert.equal(await toggle.isChecked(), true);
  await toggle.uncheck();
  await eventually(async () => (await account('crm-sync')).enabled === false, 'crm-sync disabled');
  await toggle.check();
  await eventually(async () => (await account('crm-sync')).enabled === true, 'crm-sync enabled');

  // The bin deletes after a confirmation; Cancel keeps the account.
  await page.getByRole('button', {name: 'Delete billing-job'}).click();
  await page.getByRole('alertdialog', {name: 'Delete billing-job?'}).getByRole('button', {name: 'Cancel'}).click();
  assert.equal((await admin.get('/v1/service-accounts/billing-job')).status, 200);
  await page.getByRole('button', {name: 'Delete billing-job'}).click();
  await shot(page, '05-delete-confirm');
  await page.getByRole('alertdialog', {name: 'Delete billing-job?'}).getByRole('button', {name: 'Delete', exact: true}).click();
  await page.getByRole('button', {name: 'billing-job', exact: true}).waitFor({state: 'detached'});
  assert.equal((await admin.get('/v1/service-accounts/billing-job')).status, 404);
  await context.close();
});

test('admin: the account dialog — INFO, tokens shown once, PERMISSIONS, LOGS', async () => {
  const {context, page} = await newPage();
  await logIn(page, ADMIN);
  await page.getByRole('button', {name: 'crm-sync', exact: true}).click();
  const dialog = page.getByRole('dialog', {name: 'crm-sync'});
  await dialog.waitFor();
  for (const tab of ['INFO', 'PERMISSIONS', 'LOGS']) await dialog.getByRole('tab', {name: tab}).waitFor();

  // INFO: the description is edited and saved.
  const panel = (name) => dialog.getByRole('tabpanel', {name});
  const description = dialog.getByRole('textbox', {name: 'Description'});
  await description.fill('Syncs companies and end users from the CRM');
  await dialog.getByRole('button', {name: 'Save', exact: true}).click();
  await panel('INFO').getByText('Saved.').waitFor();
  assert.equal((await account('crm-sync')).description, 'Syncs companies and end users from the CRM');

  // Generate New Token: shown once with Copy and the warning.
  const mint = async (name, expires) => {
    await dialog.getByRole('button', {name: 'Generate New Token'}).click();
    const gen = page.getByRole('dialog', {name: 'Generate New Token'});
    await gen.getByRole('textbox', {name: 'Token name'}).fill(name);
    if (expires) await gen.getByLabel('Expires').fill(expires);
    await gen.getByRole('button', {name: 'Generate'}).click();
    const box = gen.getByRole('textbox', {name: 'API Access Token'});
    await box.waitFor();
    return {gen, token: await box.inputValue()};
  };
  const {gen, token} = await mint('prod', '2031-06-30');
  assert.match(token, /^wdn_[A-Za-z0-9]{48}$/);
  assert.equal(await gen.getByRole('textbox', {name: 'API Access Token'}).getAttribute('readonly'), '');
  await gen.getByText('it will not be shown again').waitFor();
  await shot(page, '07-token-generated');
  await gen.getByRole('button', {name: 'Copy'}).click();
  await gen.getByText('Copied.').waitFor();
  assert.equal(await page.evaluate(() => navigator.clipboard.readText()), token);
  await page.evaluate(() => navigator.clipboard.writeText(''));
  await gen.getByRole('button', {name: 'Done'}).click();
  await gen.waitFor({state: 'detached'});
  // Gone from the page and from every storage of the browser.
  const stored = await everythingStored(page);
  for (const [where, text] of Object.entries(stored)) assert.ok(!text.includes(token), `the token is still in ${where}`);
  assert.ok(!text(await context.cookies()).includes(token), 'the token is in a cookie');
  assert.ok(!(await page.content()).includes(token.slice(4, 20)));
  // It is a real token: a check with it is decided for crm-sync.
  const check = await client(warden.url).post('/v1/check', {token, model: 'company', action: 'view', resource: {id: 'c1'},
    context: {request_id: 'req-first'}});
  assert.equal(check.json.allowed, true);
  assert.equal(check.json.principal.name, 'crm-sync');

  // The token list: name, prefix, created, last used, expires; each with its own delete.
  await mint('staging').then(({gen: g}) => g.getByRole('button', {name: 'Done'}).click());
  const tokens = (await admin.get('/v1/service-accounts/crm-sync/tokens')).json.items;
  assert.deepEqual(tokens.map((t) => t.name).sort(), ['prod', 'staging']);
  const prod = tokens.find((t) => t.name === 'prod');
  const prodRow = dialog.getByRole('row', {name: /^prod /});
  await prodRow.waitFor();
  const prodCells = (await prodRow.getByRole('cell').allTextContents()).map((c) => c.trim());
  assert.equal(prodCells[1], prod.prefix);
  assert.equal(prodCells[4], '2031-06-30 23:59:59 UTC');
  await dialog.getByRole('button', {name: 'Delete token staging'}).click();
  await page.getByRole('alertdialog', {name: 'Delete token staging?'}).getByRole('button', {name: 'Delete', exact: true}).click();
  await dialog.getByRole('button', {name: 'Delete token staging'}).waitFor({state: 'detached'});
  assert.deepEqual((await admin.get('/v1/service-accounts/crm-sync/tokens')).json.items.map((t) => t.name), ['prod']);
  await dialog.getByRole('button', {name: 'Delete token prod'}).waitFor();
  await shot(page, '06-account-info');

  // Decisions for the LOGS tab: 25 checks, the last one denied.
  const anon = client(warden.url);
  for (let i = 0; i < 25; i++) {
    const denied = i % 5 === 4;
    const r = await anon.post('/v1/check', {
      token, model: denied ? 'invoice' : 'company', action: denied ? 'delete' : 'view', resource: {id: `r${i}`},
      context: {client_address: `203.0.113.${i}`, method: denied ? 'DELETE' : 'GET', path: `/api/items/${i}`, request_id: `req-${i}`},
    });
    assert.equal(r.status, 200);
  }

  // PERMISSIONS: the grid, the provenance and rules, Save.
  await dialog.getByRole('tab', {name: 'PERMISSIONS'}).click();
  await dialog.getByText('Copied from the role csm').waitFor();
  const box = (label) => dialog.getByRole('checkbox', {name: label, exact: true});
  assert.equal(await box('company view').isChecked(), true);
  assert.equal(await box('company update').isChecked(), true);
  assert.equal(await box('invoice view').isChecked(), false);
  const catalog = (await admin.get('/v1/catalog')).json.models;
  assert.equal(await dialog.getByRole('checkbox').count(), catalog.reduce((n, m) => n + m.actions.length, 0));
  await dialog.getByText('when resource.owner != principal.id').waitFor();
  await box('invoice view').check();
  await box('note delete').uncheck();
  await dialog.getByRole('button', {name: 'Save', exact: true}).click();
  await panel('PERMISSIONS').getByText('Saved.').waitFor();
  const perms = await accountPermissions('crm-sync');
  assert.deepEqual(perms.permissions.invoice, ['view']);
  assert.deepEqual(perms.permissions.note, ['view', 'create', 'update']);
  assert.equal(perms.copied_from.name, 'csm');
  assert.equal(perms.rules[0].name, 'own-portfolio');
  await shot(page, '08-permissions');

  // The YAML view: a condition that does not type-check is refused with its line and column.
  await dialog.getByRole('button', {name: 'Edit as YAML'}).click();
  const yaml = dialog.getByRole('textbox', {name: 'Policy YAML'});
  const text0 = await yaml.inputValue();
  assert.match(text0, /own-portfolio/);
  assert.match(text0, /^ *when: .*$/m);
  await yaml.fill(text0.replace(/when: .*$/m, 'when: resource.arr == "big"'));
  await dialog.getByRole('button', {name: 'Save YAML'}).click();
  const errors = dialog.getByRole('list', {name: 'YAML errors'});
  await errors.getByText(/^line \d+, column \d+: /).first().waitFor();
  assert.equal(await yaml.getAttribute('aria-invalid'), 'true');
  assert.equal((await accountPermissions('crm-sync')).version, perms.version);
  await shot(page, '09-permissions-yaml-error');
  await yaml.fill(text0.replace(/when: .*$/m, 'when: resource.segment == "smb"'));
  await dialog.getByRole('button', {name: 'Save YAML'}).click();
  await dialog.getByText('when resource.segment == "smb"').waitFor();
  assert.equal((await accountPermissions('crm-sync')).rules[0].when, 'resource.segment == "smb"');

  // LOGS: newest first, 20 a page, Load more; filters by allowed, model, action and time.
  await dialog.getByRole('tab', {name: 'LOGS'}).click();
  const table = dialog.getByRole('table', {name: 'Request history'});
  const rows = table.locator('tbody tr');
  await eventually(async () => (await rows.count()) === 20, '20 rows');
  const header = (await table.locator('thead th').allTextContents());
  assert.deepEqual(header, ['Time', 'Model', 'Action', 'Allowed', 'Reason', 'Rule', 'Client address', 'Method', 'Path', 'Request ID']);
  const first = (await rows.first().locator('td').allTextContents()).map((c) => c.trim());
  assert.deepEqual(first.slice(1), ['invoice', 'delete', 'Denied', 'GUARDRAIL_DENY', 'guardrail:service-account-limits#no-invoice-delete',
    '203.0.113.24', 'DELETE', '/api/items/24', 'req-24']);
  const api24 = (await admin.get('/v1/service-accounts/crm-sync/logs?limit=1')).json.items[0];
  assert.equal(api24.context.request_id, 'req-24');
  await shot(page, '10-logs');
  await dialog.getByRole('button', {name: 'Load more'}).click();
  await eventually(async () => (await rows.count()) === 26, '26 rows');
  assert.equal(await dialog.getByRole('button', {name: 'Load more'}).isVisible(), false);
  assert.equal((await rows.last().locator('td').nth(9).textContent()).trim(), 'req-first');
  await dialog.getByRole('combobox', {name: 'Allowed'}).selectOption('false');
  await eventually(async () => (await rows.count()) === 5, '5 denied rows');
  await dialog.getByRole('combobox', {name: 'Allowed'}).selectOption('');
  await dialog.getByRole('combobox', {name: 'Model'}).selectOption('company');
  await dialog.getByRole('combobox', {name: 'Action'}).selectOption('view');
  // The unfiltered list also has 20 rows and more: wait for the filtered one (models and
  // actions), not just the count (a slow server, under ASan, showed the list in between).
  const columns = async (n) => [...new Set(await table.locator(`tbody td:nth-child(${n})`).allTextContents())];
  await eventually(async () => (await rows.count()) === 20 && await dialog.getByRole('button', {name: 'Load more'}).isVisible() &&
    JSON.stringify(await columns(2)) === '["company"]' && JSON.stringify(await columns(3)) === '["view"]', '20 company view rows and more');
  assert.deepEqual(await columns(2), ['company']);
  await dialog.getByLabel('From', {exact: true}).fill('2099-01-01T00:00');
  await dialog.getByLabel('From', {exact: true}).dispatchEvent('change');
  await dialog.getByText('No requests match.').waitFor();
  await dialog.getByLabel('From', {exact: true}).fill('');
  await dialog.getByLabel('To', {exact: true}).fill('2000-01-01T00:00');
  await dialog.getByLabel('To', {exact: true}).dispatchEvent('change');
  await dialog.getByText('No requests match.').waitFor();
  await page.keyboard.press('Escape');
  await dialog.waitFor({state: 'detached'});
  // The closed dialog's token count is in the list.
  await page.getByRole('row', {name: /crm-sync Syncs/}).getByRole('cell', {name: '1', exact: true}).waitFor();
  await context.close();
});

const text = (x) => JSON.stringify(x);

test('keyboard only: the menu, the modal traps focus and closes on Escape', async () => {
  const {context, page} = await newPage();
  await logIn(page, ADMIN);
  await page.getByRole('heading', {name: 'Service Accounts'}).waitFor();
  // The menu opens with Enter and is walked with the arrows.
  await page.getByRole('button', {name: 'Account menu'}).focus();
  await page.keyboard.press('Enter');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Service Accounts');
  await page.keyboard.press('ArrowDown');
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Users');
  await page.keyboard.press('Escape');
  assert.equal(await page.evaluate(() => document.activeElement.getAttribute('aria-label')), 'Account menu');
  // Add New: typed and submitted from the keyboard; Tab never leaves the dialog.
  await page.getByRole('button', {name: 'Add New'}).focus();
  await page.keyboard.press('Enter');
  const dialog = page.getByRole('dialog', {name: 'Add New Service Account'});
  await dialog.waitFor();
  for (let i = 0; i < 14; i++) {
    await page.keyboard.press(i % 4 === 3 ? 'Shift+Tab' : 'Tab');
    assert.ok(await dialog.evaluate((d) => d.contains(document.activeElement)), `focus left the dialog after ${i + 1} tabs`);
  }
  await page.keyboard.press('Escape');
  await dialog.waitFor({state: 'detached'});
  assert.equal(await page.evaluate(() => document.activeElement.textContent), 'Add New');
  await page.keyboard.press('Enter');
  await dialog.waitFor();
  await page.keyboard.type('keyboard-job');
  await page.keyboard.press('Enter');
  await page.getByRole('dialog', {name: 'keyboard-job'}).waitFor();
  assert.equal((await account('keyboard-job')).name, 'keyboard-job');
  // The tabs move with the arrow keys.
  await page.getByRole('dialog', {name: 'keyboard-job'}).getByRole('tab', {name: 'INFO'}).focus();
  await page.keyboard.press('ArrowRight');
  assert.equal(await page.getByRole('tab', {name: 'PERMISSIONS'}).getAttribute('aria-selected'), 'true');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog', {name: 'keyboard-job'}).waitFor({state: 'detached'});
  await context.close();
});

test('admin: Users (add with roles, disable) and Tenant (token shown, rotated), then log out', async () => {
  const {context, page} = await newPage();
  await logIn(page, ADMIN);
  await page.getByRole('button', {name: 'Account menu'}).click();
  await page.getByRole('menuitem', {name: 'Users'}).click();
  await page.getByRole('heading', {name: 'Users'}).waitFor();
  await page.getByRole('button', {name: 'Add User'}).click();
  const dialog = page.getByRole('dialog', {name: 'Add User'});
  await dialog.getByRole('textbox', {name: 'Email'}).fill('casey@example.com');
  await dialog.getByRole('textbox', {name: 'Display name'}).fill(XSS);
  await dialog.getByLabel('Password').fill('casey-password-1');
  await dialog.getByRole('button', {name: 'Create'}).click();
  await dialog.getByText('Choose at least one role.').waitFor();
  await dialog.getByRole('checkbox', {name: /^manager/}).check();
  await dialog.getByRole('checkbox', {name: /^csm/}).check();
  await dialog.getByRole('button', {name: 'Create'}).click();
  await dialog.waitFor({state: 'detached'});
  const row = page.getByRole('row', {name: /casey@example.com/});
  await row.getByText(XSS).waitFor();
  assert.equal(await page.locator('img').count(), 0);
  let users = (await admin.get('/v1/users')).json.items;
  const casey = users.find((u) => u.email === 'casey@example.com');
  assert.deepEqual(casey.roles.sort(), ['csm', 'manager']);
  assert.equal(casey.name, XSS);
  await login(warden.url, 'casey@example.com', 'casey-password-1');
  await shot(page, '11-users');
  await page.getByRole('switch', {name: 'Enabled casey@example.com'}).uncheck();
  await eventually(async () => (await admin.get(`/v1/users/${casey.id}`)).json.enabled === false, 'casey disabled');
  assert.equal((await client(warden.url).post('/v1/auth/login', {email: 'casey@example.com', password: 'casey-password-1'})).status, 401);
  // Nobody disables themself.
  assert.equal(await page.getByRole('switch', {name: 'Enabled admin@localhost'}).isDisabled(), true);

  await page.getByRole('button', {name: 'Account menu'}).click();
  await page.getByRole('menuitem', {name: 'Tenant'}).click();
  const tokenBox = page.getByRole('textbox', {name: 'Tenant token'});
  await tokenBox.waitFor();
  const before = (await admin.get('/v1/tenant')).json.tenant_token;
  assert.equal(await tokenBox.inputValue(), before);
  await page.getByText('for the analytics endpoint only').waitFor();
  await shot(page, '12-tenant');
  await page.getByRole('button', {name: 'Rotate token'}).click();
  await page.getByRole('alertdialog', {name: 'Rotate the tenant token?'}).getByRole('button', {name: 'Rotate'}).click();
  await eventually(async () => (await tokenBox.inputValue()) !== before, 'the token changes');
  const after = (await admin.get('/v1/tenant')).json.tenant_token;
  assert.notEqual(after, before);
  assert.equal(await tokenBox.inputValue(), after);

  // Log out: the cookie session is over.
  await page.getByRole('button', {name: 'Account menu'}).click();
  await page.getByRole('menuitem', {name: 'Log out'}).click();
  await page.getByRole('button', {name: 'Log in'}).waitFor();
  assert.equal(await page.evaluate(async () => (await fetch('/v1/auth/me')).status), 401);
  await context.close();
});

test('developer: service accounts only; escalation refused in the modal with what is lacking', async () => {
  const {context, page} = await newPage();
  await logIn(page, DEV);
  await page.getByRole('heading', {name: 'Service Accounts'}).waitFor();
  assert.deepEqual(await menuItems(page), ['Service Accounts', 'Log out']);
  await shot(page, '13-account-menu-developer');
  await page.keyboard.press('Escape');

  // Copying the admin role would give the account what the developer lacks.
  await page.getByRole('button', {name: 'Add New'}).click();
  const dialog = page.getByRole('dialog', {name: 'Add New Service Account'});
  await dialog.getByRole('textbox', {name: 'Name'}).fill('too-strong');
  await dialog.getByRole('radio', {name: 'Role'}).check();
  await dialog.getByRole('combobox', {name: 'Role to copy'}).selectOption('admin');
  await dialog.getByRole('button', {name: 'Create'}).click();
  const lacking = dialog.getByRole('list', {name: 'Permissions you lack'});
  await lacking.getByText('user: view, create, update, delete', {exact: true}).waitFor();
  // The guardrail keeps invoice delete from every service account: not lacking.
  await lacking.getByText('invoice: create, update, export', {exact: true}).waitFor();
  await shot(page, '14-add-new-escalation-refused');
  assert.equal((await admin.get('/v1/service-accounts/too-strong')).status, 404);
  // The developer's own role is within bounds.
  await dialog.getByRole('combobox', {name: 'Role to copy'}).selectOption('developer');
  await dialog.getByRole('button', {name: 'Create'}).click();
  const own = page.getByRole('dialog', {name: 'too-strong'});
  await own.waitFor();
  assert.equal((await accountPermissions('too-strong')).copied_from.name, 'developer');

  // Granting what the developer lacks is refused beside the model it names.
  await own.getByRole('tab', {name: 'PERMISSIONS'}).click();
  await own.getByRole('checkbox', {name: 'invoice export', exact: true}).check();
  await own.getByRole('button', {name: 'Save', exact: true}).click();
  await own.getByText('you do not hold export', {exact: true}).waitFor();
  assert.equal(await own.getByRole('checkbox', {name: 'invoice export', exact: true}).getAttribute('aria-invalid'), 'true');
  assert.deepEqual((await accountPermissions('too-strong')).permissions.invoice, ['view']);
  await own.getByRole('button', {name: 'Close'}).click();

  // crm-sync (csm) may update companies; the developer may not: no token for it.
  await page.getByRole('button', {name: 'crm-sync', exact: true}).click();
  const crm = page.getByRole('dialog', {name: 'crm-sync'});
  await crm.getByRole('button', {name: 'Generate New Token'}).click();
  const gen = page.getByRole('dialog', {name: 'Generate New Token'});
  await gen.getByRole('textbox', {name: 'Token name'}).fill('dev-attempt');
  await gen.getByRole('button', {name: 'Generate'}).click();
  await gen.getByText(/Refused: you do not hold company update/).waitFor();
  assert.deepEqual((await admin.get('/v1/service-accounts/crm-sync/tokens')).json.items.map((t) => t.name), ['prod']);
  await page.keyboard.press('Escape');
  await gen.waitFor({state: 'detached'});
  await crm.waitFor();  // Escape closes only the top dialog
  await page.keyboard.press('Escape');
  await context.close();
});

test('viewer: no service accounts, users or tenant in the menu; the API refuses them too', async () => {
  const {context, page} = await newPage();
  await logIn(page, VIEWER);
  await page.getByRole('heading', {name: /Welcome/}).waitFor();
  assert.deepEqual(await menuItems(page), ['Log out']);
  await shot(page, '15-viewer');
  await page.goto('/#/service-accounts');
  await page.getByRole('heading', {name: /Welcome/}).waitFor();
  assert.equal(await page.getByRole('heading', {name: 'Service Accounts'}).count(), 0);
  const statuses = await page.evaluate(async () => Promise.all(
    ['/v1/service-accounts', '/v1/users', '/v1/tenant'].map(async (p) => (await fetch(p)).status)));
  assert.deepEqual(statuses, [403, 403, 403]);
  await context.close();
});

test('CSRF: a page of another origin cannot change state with the session cookie', async () => {
  const {context, page} = await newPage();
  await logIn(page, ADMIN);
  // Same page, no CSRF header: refused.
  const direct = await page.evaluate(async () => {
    const r = await fetch('/v1/service-accounts', {method: 'POST', headers: {'Content-Type': 'application/json'},
      body: JSON.stringify({name: 'csrf-direct'})});
    return {status: r.status, body: await r.json()};
  });
  assert.equal(direct.status, 403);
  assert.match(direct.body.error.message, /X-CSRF-Token/);

  // Another origin (another port on 127.0.0.1: the same site, so the SameSite=Strict cookie
  // goes along): a form post and a no-cors fetch. The CSRF header is what refuses them.
  const evil = createServer((req, res) => {
    res.writeHead(200, {'Content-Type': 'text/html'});
    res.end(`<!doctype html><form id=f method=POST enctype=text/plain action="${warden.url}/v1/service-accounts">
      <input name='{"name":"csrf-form","x":"' value='"}'></form>
      <script>
        fetch("${warden.url}/v1/service-accounts", {method: "POST", mode: "no-cors", credentials: "include",
          headers: {"Content-Type": "text/plain"}, body: JSON.stringify({name: "csrf-fetch"})})
          .finally(() => { document.title = "sent"; document.getElementById("f").submit(); });
      </script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const evilUrl = `http://127.0.0.1:${evil.address().port}/`;
  try {
    const answer = page.waitForResponse((r) => r.url() === `${warden.url}/v1/service-accounts` && r.request().method() === 'POST' &&
      r.request().resourceType() === 'document');
    await page.goto(evilUrl);
    const res = await answer;
    assert.equal(res.status(), 403);
    assert.match(await res.text(), /X-CSRF-Token/);
    assert.equal(res.headers()['access-control-allow-origin'], undefined);
  } finally {
    evil.close();
  }
  const names = (await admin.get('/v1/service-accounts')).json.items.map((a) => a.name);
  for (const n of ['csrf-direct', 'csrf-form', 'csrf-fetch']) assert.ok(!names.includes(n), `${n} was created`);
  await context.close();
});

test('nothing went wrong in any page: no script error, no CSP violation, no alert', () => {
  assert.deepEqual(problems, []);
});
