// Automatic stops in a real browser: a space about to stop for being idle shows the warning
// on its card and on every page, and "Keep running" moves its stop away.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signInToDashboard, startHangar, watchedPage, waitShown } from './harness.mjs';

let hangar;
let chromium;

before(async () => {
  // An idle stop of a minute, warned 58 s ahead, looked at every second: the warning comes
  // two seconds after the space starts.
  hangar = await startHangar({ HANGAR_AUTOSTOP_INTERVAL_SECS: '1', HANGAR_AUTOSTOP_WARNING_SECS: '58' });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
});

test('the warning of an idle stop appears, and Keep running moves the stop', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  const template = await api(page, 'POST', '/api/v1/templates', {
    name: 'box', image: 'hangar/busybox:test', compute_units: 0, autostop: { idle_stop_minutes: 1 },
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'idle-box', template_id: template.body.id });
  assert.equal(space.status, 201);
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);

  // The card says when and why, then warns, live.
  const card = '[data-testid="space-card"][data-space="idle-box"]';
  const warned = await waitShown(page, `${card} [data-testid="autostop"][data-warned="true"]`);
  assert.match(await warned.innerText(), /stops at \d\d:\d\d \(idle 1 min\)/);
  const before = await warned.getAttribute('data-at');
  // Every page shows it, the profile page too.
  await page.goto(`${hangar.url}/profile`);
  await waitShown(page, '[data-testid="stop-warning"][data-space="idle-box"] [data-testid="keep-running"]');
  await page.screenshot({ path: join(RESULTS, 'autostop-warning.png') });

  await page.click('[data-testid="stop-warning"][data-space="idle-box"] [data-testid="keep-running"]');
  await page.waitForSelector('[data-testid="stop-warning"]', { state: 'detached', timeout: 10_000 });
  await page.goto(`${hangar.url}/`);
  const moved = await waitShown(page, `${card} [data-testid="autostop"][data-warned="false"]`);
  const after = await moved.getAttribute('data-at');
  const minutes = (Date.parse(after) - Date.parse(before)) / 60_000;
  assert.ok(minutes > 55, `the stop moved by ${minutes} min: ${before} -> ${after}`);

  // The space page tells the last activity and its kind.
  await page.goto(`${hangar.url}/spaces/${id}`);
  await waitShown(page, '[data-testid="last-activity"]:has-text("keepalive")');
  assert.equal((await api(page, 'GET', `/api/v1/spaces/${id}`)).body.state, 'running');
  assert.deepEqual(problems, []);
});
