// The whole product from the browser: an admin sets up a group and a user, the user creates
// and starts a space and watches quota and state move live while another browser acts on it,
// an over-quota create is disabled with its reason, sharing shows up and goes away live.
// Saves a screenshot of every main page under end2end/test-results/pages/.
import assert from 'node:assert/strict';
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

const SHOTS = join(RESULTS, 'pages');
const LIVE = { timeout: 10_000 };

let hangar;
let chromium;

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  // New users start with no quota of their own, so what they get comes from their group.
  hangar = await startHangar({
    HANGAR_DEFAULT_MAX_SPACES: '0',
    HANGAR_DEFAULT_COMPUTE_UNITS: '0',
    HANGAR_DEFAULT_STORAGE_UNITS: '0',
    HANGAR_DEFAULT_TEMPLATE: 'false',
  });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
});


async function shot(page, name) {
  await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

async function hydrated(page, path) {
  await page.goto(`${hangar.url}${path}`);
  await waitHydrated(page);
}

/// Marks the document; if the page were reloaded the mark would be gone.
async function markDocument(page) {
  await page.evaluate(() => { window.__hangarMark = 'still the same document'; });
}

async function assertNotReloaded(page) {
  assert.equal(await page.evaluate(() => window.__hangarMark), 'still the same document', 'the page was reloaded');
}

async function waitLive(page) {
  await page.waitForSelector('[data-testid="live"][data-connected="true"]', LIVE);
}

test('admin sets up, a developer works, everything moves live', async () => {
  const admin = await watchedPage(chromium.browser);
  const dev = await watchedPage(chromium.browser);
  const pal = await watchedPage(chromium.browser, { viewport: { width: 390, height: 844 } });
  try {
    await walk(admin, dev, pal);
  } catch (error) {
    // What each browser showed when it went wrong.
    for (const [name, who] of Object.entries({ admin, dev, pal })) {
      await shot(who.page, `failure-${name}`).catch(() => {});
      if (who.problems.length) console.error(`${name} saw:\n  ${who.problems.join('\n  ')}`);
    }
    throw error;
  }
  for (const who of [admin, dev, pal]) assert.deepEqual(who.problems, []);
});

async function walk(admin, dev, pal) {

  // --- the admin: a template, a group with quota, a user in it ---------------------------
  await signIn(admin.page, hangar.url, 'admin', ADMIN_PASSWORD);
  await admin.page.waitForURL(`${hangar.url}/`);
  const template = await api(admin.page, 'POST', '/api/v1/templates', {
    name: 'box', description: 'BusyBox for tests', image: 'hangar/busybox:test', shell: '/bin/sh', compute_units: 1,
    volumes: [{ name: 'home', mount_path: '/home/dev', size_gib: 1 }],
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));

  await hydrated(admin.page, '/admin/groups');
  await admin.page.click('[data-testid="new-group"]');
  await admin.page.fill('[data-testid="group-name"]', 'team');
  await admin.page.fill('[data-testid="group-spaces"]', '2');
  await admin.page.fill('[data-testid="group-cu"]', '1');
  await admin.page.fill('[data-testid="group-su"]', '10');
  await admin.page.click('[data-testid="create-group"]');
  await admin.page.waitForSelector('[data-group="team"]');

  // A bad value is refused next to its field, before anything is sent.
  await admin.page.fill('[data-group="team"] [data-testid="edit-group-cu"]', 'lots');
  await admin.page.click('[data-group="team"] [data-testid="save-group"]');
  await admin.page.waitForSelector('[data-group="team"] .field-error[data-field="compute_units"]');
  await admin.page.fill('[data-group="team"] [data-testid="edit-group-cu"]', '1');

  await hydrated(admin.page, '/admin/users');
  await admin.page.click('[data-testid="new-user"]');
  await admin.page.fill('[data-testid="new-username"]', 'dev');
  await admin.page.fill('[data-testid="new-password"]', 'short');
  await admin.page.click('[data-testid="create-user"]');
  // The server's validation comes back as a message at the password field.
  await admin.page.waitForSelector('.field-error[data-field="password"]');
  await admin.page.fill('[data-testid="new-password"]', 'dev-password-1');
  await admin.page.click('[data-testid="create-user"]');
  await admin.page.waitForSelector('[data-username="dev"]');

  await hydrated(admin.page, '/admin/groups');
  await admin.page.selectOption('[data-group="team"] [data-testid="add-member"]', { label: 'dev' });
  await admin.page.click('[data-group="team"] [data-testid="add-member-submit"]');
  await admin.page.waitForSelector('[data-group="team"] [data-member="dev"]');
  await shot(admin.page, 'admin-groups');
  // The users page reads every listed user's usage in one request per change, not one each.
  const quotaRequests = { batched: 0, single: 0 };
  admin.page.on('request', (request) => {
    const path = new URL(request.url()).pathname;
    if (/\/user_quotas\d*$/.test(path)) quotaRequests.batched += 1;
    else if (/\/user_quota\d*$/.test(path)) quotaRequests.single += 1;
  });
  await hydrated(admin.page, '/admin/users');
  await admin.page.waitForSelector('[data-username="dev"] [data-testid="quota-compute"]');
  await shot(admin.page, 'admin-users');

  // --- the developer: effective quota, create with preview, start -------------------------
  await signIn(dev.page, hangar.url, 'dev', 'dev-password-1');
  await dev.page.waitForURL(`${hangar.url}/`);
  await waitHydrated(dev.page);
  await waitLive(dev.page);
  await markDocument(dev.page);
  const bar = (name) => dev.page.locator(`[data-testid="quota-bars"] [data-testid="quota-${name}"]`);
  assert.equal(await bar('spaces').getAttribute('data-quota'), '2');
  assert.equal(await bar('compute').getAttribute('data-quota'), '1');
  assert.equal(await bar('storage').getAttribute('data-quota'), '10');
  await dev.page.waitForSelector('[data-testid="no-spaces"]');

  await dev.page.click('[data-testid="new-space"]');
  await dev.page.fill('[data-testid="space-name"]', 'api');
  await dev.page.waitForSelector('[data-testid="create-preview"] [data-testid="quota-storage"]');
  assert.match(await dev.page.locator('[data-testid="create-preview"] [data-testid="quota-storage"]').innerText(), /0 → 1 of 10 SU/);
  await shot(dev.page, 'create-space');
  await dev.page.click('[data-testid="create"]');
  const card = dev.page.locator('[data-testid="space-card"][data-space="api"]');
  await card.waitFor();
  await card.locator('[data-testid="start"]').click();
  await dev.page.waitForSelector('[data-testid="space-card"][data-space="api"][data-state="running"]', { timeout: 60_000 });
  await dev.page.waitForSelector('[data-testid="quota-bars"] [data-testid="quota-compute"][data-used="1"]', LIVE);
  // The storage bar counts declared GiB; beside it, what the volumes hold on disk.
  assert.match(await dev.page.locator('[data-testid="quota-bars"] [data-testid="disk-use"]').innerText(), /used of 1 GiB on disk/);
  await shot(dev.page, 'dashboard');
  // The admin's users page, open all along, shows the new usage too.
  await admin.page.waitForSelector('[data-username="dev"] [data-testid="quota-compute"][data-used="1"]', LIVE);
  assert.equal(quotaRequests.single, 0, 'no per-user quota request');
  assert.ok(quotaRequests.batched >= 2, `one request on load and one per change: ${JSON.stringify(quotaRequests)}`);

  // --- another browser stops it: the developer's page follows without a reload -----------
  await hydrated(admin.page, '/admin/spaces');
  // Below the spaces, the engine they run on, with the running space's unit reserved.
  const engineRow = admin.page.locator('[data-testid="node-list"] tr[data-node]');
  await admin.page.waitForSelector('[data-testid="node-list"] [data-testid="node-cu"][data-reserved="1"]', LIVE);
  assert.equal(await engineRow.count(), 1);
  assert.match(await engineRow.locator('li[data-space="api"]').innerText(), /dev\/api \(1 CU\)/);
  await admin.page.locator('tr[data-space="api"] [data-testid="stop"]').click();
  await dev.page.waitForSelector('[data-testid="space-card"][data-space="api"][data-state="stopped"]', LIVE);
  await dev.page.waitForSelector('[data-testid="quota-bars"] [data-testid="quota-compute"][data-used="0"]', LIVE);
  await admin.page.waitForSelector('[data-testid="node-list"] [data-testid="node-cu"][data-reserved="0"]', LIVE);
  await shot(admin.page, 'admin-spaces');

  // --- the admin lowers the group's quota: the bars and the create dialog follow ----------
  await hydrated(admin.page, '/admin/groups');
  await admin.page.fill('[data-group="team"] [data-testid="edit-group-spaces"]', '1');
  await admin.page.click('[data-group="team"] [data-testid="save-group"]');
  await dev.page.waitForSelector('[data-testid="quota-bars"] [data-testid="quota-spaces"][data-quota="1"]', LIVE);
  // The admin's own page shows the member's new effective quota too.
  await admin.page.waitForSelector('[data-group="team"] [data-member="dev"] [data-testid="quota-spaces"][data-quota="1"]', LIVE);
  await dev.page.click('[data-testid="new-space"]');
  await dev.page.fill('[data-testid="space-name"]', 'second');
  const reason = dev.page.locator('[data-testid="create-disabled-reason"]');
  await reason.filter({ hasText: 'space quota exceeded' }).waitFor(LIVE);
  assert.match(await reason.innerText(), /1 of 1 spaces in use/);
  assert.equal(await dev.page.locator('[data-testid="create"]').isDisabled(), true);
  await shot(dev.page, 'create-space-over-quota');
  await assertNotReloaded(dev.page);

  // --- sharing appears on the sharee's dashboard live, and goes away live -----------------
  const palUser = await api(admin.page, 'POST', '/api/v1/users', { username: 'pal', password: 'pal-password-1' });
  assert.equal(palUser.status, 201, JSON.stringify(palUser.body));
  await signIn(pal.page, hangar.url, 'pal', 'pal-password-1');
  await pal.page.waitForURL(`${hangar.url}/`);
  await waitHydrated(pal.page);
  await waitLive(pal.page);
  await markDocument(pal.page);
  await pal.page.waitForSelector('[data-testid="no-spaces"]');

  await card.locator('[data-testid="details"]').click();
  await dev.page.waitForSelector('[data-testid="space-details"]');
  await waitHydrated(dev.page);
  // The space's own page has no button leading to itself.
  assert.equal(await dev.page.locator('[data-testid="space-details"] [data-testid="details"]').count(), 0);
  // A user whose display name is their username is named once.
  assert.equal(await dev.page.locator('[data-testid="owner"]').innerText(), 'dev');
  const spacePath = new URL(dev.page.url()).pathname;
  // Times read as words, the exact time on hover.
  const created = dev.page.locator('[data-testid="created"] time');
  assert.match(await created.innerText(), /^(just now|\d+ min ago)$/);
  assert.match(await created.getAttribute('title'), /^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$/);
  await dev.page.fill('[data-testid="share-username"]', 'nobody-here');
  await dev.page.click('[data-testid="share"]');
  await dev.page.waitForSelector('.field-error[data-field="user"]');
  await dev.page.fill('[data-testid="share-username"]', 'pal');
  await dev.page.click('[data-testid="share"]');
  await dev.page.waitForSelector('[data-testid="shares"] [data-user="pal"]', LIVE);
  const shared = pal.page.locator('[data-testid="space-card"][data-space="api"]');
  await shared.waitFor(LIVE);
  assert.match(await shared.locator('[data-testid="shared-by"]').innerText(), /dev/);
  await shot(pal.page, 'dashboard-shared-phone');
  await dev.page.waitForSelector('[data-testid="history"]');
  // Each volume shows what it holds of its size, a hard limit on this host.
  const volume = dev.page.locator('[data-testid="volume-usage"][data-volume="home"][data-enforced="true"]');
  await volume.waitFor(LIVE);
  assert.match(await volume.innerText(), /^home at \/home\/dev: [\d.]+ (B|KiB|MiB) used of 1 GiB$/);
  // The exact count on hover.
  assert.match(await volume.getAttribute('title'), /^[\d,]+ bytes? used$/);
  await shot(dev.page, 'space');

  await relativeTimesSurviveHydration();

  await dev.page.click('[data-testid="shares"] [data-user="pal"] [data-testid="revoke"]');
  await shared.waitFor({ state: 'detached', ...LIVE });
  await pal.page.waitForSelector('[data-testid="no-spaces"]', LIVE);
  await assertNotReloaded(pal.page);

  // --- the remaining pages render ---------------------------------------------------------
  await hydrated(dev.page, '/profile');
  await dev.page.waitForSelector('[data-testid="password-form"]');
  await shot(dev.page, 'profile');
  await hydrated(admin.page, '/admin/templates');
  await admin.page.waitForSelector('[data-template="box"]');
  await shot(admin.page, 'admin-templates');
  await hydrated(admin.page, '/admin/audit');
  await admin.page.waitForSelector('[data-testid="audit"]');
  assert.match(await admin.page.locator('[data-testid="audit"]').innerText(), /space\.share/);
  await shot(admin.page, 'admin-audit');
  // On a phone, the space's page (with its setup log's long lines) and the profile (its
  // forms, tables of keys) fit the screen's width.
  const phone = await watchedPage(chromium.browser, { viewport: { width: 390, height: 844 } });
  try {
    await signIn(phone.page, hangar.url, 'dev', 'dev-password-1');
    await phone.page.waitForURL(`${hangar.url}/`);
    for (const path of [spacePath, '/profile']) {
      await hydrated(phone.page, path);
      const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
      assert.ok(width <= 390, `${path} is ${width} px wide on a 390 px screen`);
    }
    assert.deepEqual(phone.problems, []);
  } finally {
    await phone.page.context().close();
  }
  // A member is told the admin pages are not for them.
  await hydrated(dev.page, '/admin/users');
  await dev.page.waitForSelector('text=Administrators only');

  // Clean up the container.
  const spaces = await api(admin.page, 'GET', '/api/v1/spaces?all=true');
  for (const space of spaces.body) await api(admin.page, 'DELETE', `/api/v1/spaces/${space.id}`);
}

/// A relative time as the server renders it ("just now", the exact time in its title) is the
/// same once the page is hydrated, even in a browser whose clock is 3 hours ahead of the
/// server's, and then counts from the browser's clock. Checked on a part of the profile that
/// nothing redraws after hydration: had the browser hydrated with its own clock, its words
/// ("3 h ago") would differ from the page's ("just now") without the page being changed, and
/// the switch to the browser's clock, finding the same words, would leave "just now" in place.
async function relativeTimesSurviveHydration() {
  const timed = await watchedPage(chromium.browser);
  try {
    await signIn(timed.page, hangar.url, 'dev', 'dev-password-1');
    await timed.page.waitForURL(`${hangar.url}/`);
    const saved = await api(timed.page, 'PUT', '/api/v1/me/git-credentials/git.example.org', { token: 'not-a-real-token' });
    assert.equal(saved.status, 200, JSON.stringify(saved.body));
    await timed.page.clock.setFixedTime(new Date(Date.now() + 3 * 3600_000));
    const selector = 'tr[data-host="git.example.org"] time';
    // Registered before the app's own listener: reads the words hydration left, before the
    // page's clock takes over.
    await timed.page.addInitScript((selector) => {
      window.addEventListener('hangar:hydrated', () => {
        window.__savedAtHydration = document.querySelector(selector)?.textContent;
      });
    }, selector);
    // What the server sends (the same session, no script run).
    const html = await (await timed.page.request.get(`${hangar.url}/profile`)).text();
    const from = html.indexOf('data-host="git.example.org"');
    assert.ok(from > 0, 'the profile lists the saved git token');
    const element = html.slice(from).match(/<time datetime="([^"]+)" title="([^"]+)"[^>]*>(.*?)<\/time>/);
    assert.ok(element, 'the time it was saved is a <time> with its exact time');
    const [, datetime, title] = element;
    const served = element[3].replace(/<!>|<!--.*?-->/g, '');
    assert.equal(title, `${datetime.slice(0, 19).replace('T', ' ')} UTC`);
    assert.equal(served, 'just now');

    await timed.page.goto(`${hangar.url}/profile`);
    await waitHydrated(timed.page);
    assert.equal(await timed.page.evaluate(() => window.__savedAtHydration), served);
    const shown = timed.page.locator(selector);
    await shown.filter({ hasText: /^3 h ago$/ }).waitFor(LIVE);
    assert.equal(await shown.getAttribute('datetime'), datetime);
    assert.equal(await shown.getAttribute('title'), title);
    await shot(timed.page, 'profile-times');
    assert.deepEqual(timed.problems, []);
  } finally {
    await timed.page.context().close();
  }
}
