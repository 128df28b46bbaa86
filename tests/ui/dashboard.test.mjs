// Browser test of the dashboard, run by scripts/ui-test against a running service (and its
// test node): Debian's chromium driven by playwright-core, axe-core for accessibility.
//
// Environment: ABS_URL (the service, e.g. http://127.0.0.1:18081), ABS_ADMIN_TOKEN,
// ABS_VIEWER_TOKEN (read-only), ABS_ROUTINE (a routine whose full backup takes several
// seconds), ABS_FAILING_ROUTINE (one whose backups fail), ABS_SHOTS (folder for the screenshots), CHROMIUM (default /usr/bin/chromium).
// Exits non-zero on the first failed check, naming it.
import { chromium } from 'playwright-core';
import { createRequire } from 'node:module';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import assert from 'node:assert/strict';

const need = (k) => { const v = process.env[k]; if (!v) throw new Error(`${k} is not set`); return v; };
const base = need('ABS_URL').replace(/\/$/, '');
const admin = need('ABS_ADMIN_TOKEN');
const viewer = need('ABS_VIEWER_TOKEN');
const routine = need('ABS_ROUTINE');
const failing = need('ABS_FAILING_ROUTINE');
const shots = need('ABS_SHOTS');
const secretInConfig = process.env.ABS_CONFIG_SECRET || '';
const executablePath = process.env.CHROMIUM || '/usr/bin/chromium';
fs.mkdirSync(shots, { recursive: true });
if (!fs.existsSync(executablePath)) throw new Error(`${executablePath} is missing (apt-get install chromium)`);
const axeSource = fs.readFileSync(createRequire(import.meta.url).resolve('axe-core/axe.min.js'), 'utf8');

// The API, for setting up and checking what the browser did.
async function api(method, p, token = admin) {
  const r = await fetch(base + p, { method, headers: { Authorization: `Bearer ${token}` } });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}
const state = async () => (await api('GET', `/v1/backups/currentBackup/${routine}`)).body;
async function until(what, fn, ms = 60000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

const checks = [];
async function check(name, fn) {
  process.stdout.write(`- ${name} ... `);
  await fn();
  checks.push(name);
  console.log('ok');
}

async function axe(page, name) {
  // Evaluated over the DevTools protocol: the page's CSP (own scripts only) stays in force.
  await page.evaluate(axeSource);
  const result = await page.evaluate(async () => window.axe.run(document, { resultTypes: ['violations'] }));
  const bad = result.violations.filter((v) => ['serious', 'critical'].includes(v.impact));
  const minor = result.violations.length - bad.length;
  if (minor) console.log(`  (axe on ${name}: ${minor} minor/moderate finding(s): ${result.violations.filter((v) => !bad.includes(v)).map((v) => v.id).join(', ')})`);
  assert.deepEqual(bad.map((v) => `${v.id} (${v.impact}): ${v.help} at ${v.nodes.map((n) => n.target.join(' ')).join('; ')}`), [], `axe found serious or critical violations on ${name}`);
}

async function shot(page, name) {
  await page.screenshot({ path: path.join(shots, `${name}.png`), fullPage: true });
}

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'abs-ui-chromium-'));
// A fresh profile (playwright passes it as --user-data-dir).
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 860 },
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync'],
});
let failed = false;
try {
  const page = await context.newPage();
  const pageErrors = [];
  page.on('pageerror', (e) => pageErrors.push(e.message));

  await check('without a token the guarded API is refused and the page says so', async () => {
    await page.goto(`${base}/ui/`);
    await page.getByText('Enter an API token above.').waitFor();
  });

  await check('keyboard: the first Tab reaches the skip link, which moves focus to the content', async () => {
    await page.keyboard.press('Tab');
    assert.equal(await page.evaluate(() => document.activeElement.className), 'skip');
    await page.keyboard.press('Enter');
    assert.equal(await page.evaluate(() => document.activeElement.id), 'main');
  });

  await check('an admin token shows the overview with the routine', async () => {
    await page.fill('#token', admin);
    await page.click('#token-form button[type=submit]');
    await page.locator(`tr[data-routine="${routine}"]`).waitFor();
    await axe(page, 'overview');
  });

  await check('a full backup started from the overview shows a moving progress bar', async () => {
    await page.click(`button[data-run="full"][data-routine="${routine}"]`);
    await page.getByText(`full backup of ${routine} requested.`).waitFor();
    await page.goto(`${base}/ui/#/jobs`);
    const bar = page.locator(`section[data-job="b-${routine}-full"] progress`);
    await bar.waitFor();
    const first = Number(await bar.getAttribute('value'));
    // Polled every second: wait for the bar to grow.
    const later = await until('the progress bar to move', async () => {
      const v = Number(await bar.getAttribute('value').catch(() => '0'));
      return v > first ? v : 0;
    }, 20000);
    assert.ok(later > first, `progress ${first} -> ${later}`);
    await shot(page, 'jobs');
    await axe(page, 'running jobs');
    await until('the backup to finish', async () => { const s = await state(); return !s.full && s['last-full-result'] ? s : null; }, 120000);
    await page.getByText('No job is running.').waitFor();
  });

  await check('the overview colours the routine healthy after its full backup, and a failing one red', async () => {
    assert.equal((await api('POST', `/v1/backups/full/${failing}`)).status, 202);
    await until('the failing routine to fail', async () => {
      const s = (await api('GET', `/v1/backups/currentBackup/${failing}`)).body;
      return !s.full && s['last-full-result'] && s['last-full-result'].outcome === 'failure';
    });
    await page.goto(`${base}/ui/#/overview`);
    const row = page.locator(`tr[data-routine="${routine}"]`);
    await row.locator('.badge', { hasText: 'healthy' }).waitFor();
    assert.match(await row.getAttribute('class'), /row-ok/);
    const bad = page.locator(`tr[data-routine="${failing}"]`);
    await bad.locator('.badge', { hasText: 'failure' }).waitFor();
    assert.match(await bad.getAttribute('class'), /row-bad/);
    await shot(page, 'overview');
  });

  let backupId;
  await check('the timeline lists the backup with its records, a growth chart and details', async () => {
    await page.goto(`${base}/ui/#/backups/${routine}`);
    const row = page.locator('#backup-table tbody tr').first();
    await row.waitFor();
    backupId = await row.getAttribute('data-backup');
    assert.match(backupId, /^full-\d+$/);
    const list = (await api('GET', `/v1/backups/full/${routine}`)).body;
    const records = list.reduce((n, b) => n + b['record-count'], 0);
    assert.ok(records > 0);
    assert.ok((await row.innerText()).includes(records.toLocaleString('en')), 'the row shows the record count');
    assert.equal(await page.locator('svg#growth circle').count(), list.length);
    await axe(page, 'backups timeline');
    await row.getByRole('link', { name: /Details of the full backup/ }).click();
    await page.locator('#det-h').waitFor();
    // Each data file with the SHA-256 that checksums.yaml records.
    await page.locator('#files-table tbody tr').first().waitFor();
    assert.match(await page.locator('#files-table').innerText(), /\.asb[\s\S]*[0-9a-f]{64}/);
    await page.click('#verify-btn');
    await page.locator('#verify-out .badge', { hasText: 'ok' }).waitFor({ timeout: 60000 });
    assert.match(await page.locator('#verify-out').innerText(), /checked against their SHA-256/);
    await shot(page, 'backup-details');
    await axe(page, 'backup details');
  });

  await check('a restore through the wizard runs to success', async () => {
    await page.goto(`${base}/ui/#/restore/${routine}`);
    await page.locator('#w-routine').waitFor();
    assert.equal(await page.inputValue('#w-routine'), routine);
    await page.check('#w-mode-backup');
    await page.selectOption('#w-backup', backupId);
    await axe(page, 'restore wizard');
    await page.click('#w-next');
    await page.locator('#w-cluster').waitFor();
    await page.click('#w-next');
    await page.locator('#w-parallel').waitFor();
    await page.fill('#w-parallel', '4');
    await page.click('#w-next');
    await page.locator('#confirm-h').waitFor();
    await shot(page, 'restore-confirm');
    await page.click('#w-start');
    await page.locator('#w-done', { hasText: 'Restore success' }).waitFor({ timeout: 60000 });
    await shot(page, 'restore-progress');
    const jobs = (await api('GET', '/v1/restore/jobs')).body;
    const done = Object.values(jobs).filter((j) => j.status === 'success');
    assert.equal(done.length, 1, 'one successful restore job');
    assert.ok(done[0]['read-records'] > 0, 'the restore read records');
  });

  await check('cancel from the running jobs page stops a backup', async () => {
    assert.equal((await api('POST', `/v1/backups/full/${routine}`)).status, 202);
    await page.goto(`${base}/ui/#/jobs`);
    const button = page.locator(`section[data-job="b-${routine}-full"] button[data-cancel]`);
    await button.waitFor();
    await button.click();
    await until('the backup to be canceled', async () => {
      const s = await state();
      return !s.full && s['last-full-result'] && s['last-full-result'].outcome === 'canceled';
    });
    await page.getByText('No job is running.').waitFor();
  });

  await check('a read-only token sees everything but its actions are refused', async () => {
    await page.goto(`${base}/ui/#/overview`);
    await page.fill('#token', viewer);
    await page.click('#token-form button[type=submit]');
    const row = page.locator(`tr[data-routine="${routine}"]`);
    await row.waitFor();
    await page.click(`button[data-run="full"][data-routine="${routine}"]`);
    await page.locator('#status .msg.error', { hasText: /403.*read-only/ }).waitFor();
    const s = await state();
    assert.ok(!s.full, 'no backup started');
    assert.equal(s['last-full-result'].outcome, 'canceled', 'the last full is still the canceled one');
    await shot(page, 'read-only-refused');
    // Its cancel is refused too: start a backup as admin, try to cancel it as the viewer.
    assert.equal((await api('POST', `/v1/backups/full/${routine}`)).status, 202);
    await page.goto(`${base}/ui/#/jobs`);
    const button = page.locator(`section[data-job="b-${routine}-full"] button[data-cancel]`);
    await button.waitFor();
    await button.click();
    await page.locator('#status .msg.error', { hasText: /403/ }).waitFor();
    assert.ok((await state()).full, 'the backup still runs');
    await api('POST', `/v1/backups/cancel/${routine}`);
  });

  await check('configuration and plugins are shown, secrets redacted', async () => {
    await page.goto(`${base}/ui/#/config`);
    await page.locator('#config-json').waitFor();
    const text = await page.locator('main').innerText();
    assert.match(text, /storage-local/);
    assert.match(text, /\[secret\]/);
    if (secretInConfig) assert.ok(!text.includes(secretInConfig), 'a secret shows on the configuration page');
    await shot(page, 'configuration');
    await axe(page, 'configuration');
  });

  assert.deepEqual(pageErrors, [], 'no script error in the page');
} catch (e) {
  failed = true;
  console.log('FAILED');
  console.error(e);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
console.log(`${checks.length} checks passed${failed ? ', then one failed' : ''}; screenshots in ${shots}`);
process.exit(failed ? 1 : 0);
