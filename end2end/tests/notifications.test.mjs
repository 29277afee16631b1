// Notifications in a real browser: a space shared with a user rings their bell live (no
// reload), the notifications page lists it, and "Mark all read" clears the count.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signInToDashboard, startHangar, waitHydrated, waitShown, watchedPage } from './harness.mjs';

let hangar;
let chromium;

before(async () => {
  hangar = await startHangar();
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
});

test('the bell counts and clears', async () => {
  const admin = await watchedPage(chromium.browser);
  await signInToDashboard(admin.page, hangar.url, 'admin', ADMIN_PASSWORD);
  const bob = await api(admin.page, 'POST', '/api/v1/users', { username: 'bob', password: 'bob-password-e2e' });
  assert.equal(bob.status, 201, JSON.stringify(bob.body));
  const template = await api(admin.page, 'POST', '/api/v1/templates', { name: 'box', image: 'hangar/busybox:test', compute_units: 0 });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(admin.page, 'POST', '/api/v1/spaces', { name: 'shared-box', template_id: template.body.id });
  assert.equal(space.status, 201);

  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'bob', 'bob-password-e2e');
  await waitShown(page, '[data-testid="bell"]');
  assert.equal(await page.locator('[data-testid="unread-count"]').count(), 0);

  // Shared: Bob's open page counts it without a reload.
  const shared = await api(admin.page, 'PUT', `/api/v1/spaces/${space.body.id}/shares/${bob.body.id}`);
  assert.equal(shared.status, 200, JSON.stringify(shared.body));
  const count = await waitShown(page, '[data-testid="unread-count"]');
  assert.equal((await count.innerText()).trim(), '1');
  await page.screenshot({ path: join(RESULTS, 'notifications-bell.png') });

  await page.click('[data-testid="bell"]');
  await page.waitForURL(`${hangar.url}/notifications`);
  await waitHydrated(page);
  const item = await waitShown(page, '[data-testid="notifications"] .notification.unread[data-kind="share_received"]');
  assert.match(await item.innerText(), /admin shared shared-box with you/);
  await page.click('[data-testid="mark-all-read"]');
  await page.waitForSelector('[data-testid="unread-count"]', { state: 'detached', timeout: 10_000 });
  await page.waitForSelector('[data-testid="notifications"] .notification.unread', { state: 'detached', timeout: 10_000 });
  const unread = await api(page, 'GET', '/api/v1/me/notifications/unread');
  assert.deepEqual(unread.body, { unread: 0 });
  assert.deepEqual(problems, []);
  assert.deepEqual(admin.problems, []);
});
