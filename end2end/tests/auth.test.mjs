// Signing in from a real browser, and a control that only works once the wasm has hydrated.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { ADMIN_PASSWORD, RESULTS, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

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

test('a signed-out visitor is sent to the sign-in page', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  const response = await page.goto(`${hangar.url}/`);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.equal(response.status(), 200);
  await waitHydrated(page);
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('a wrong password shows why sign-in failed', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', 'not-the-password');
  const error = await page.waitForSelector('[data-testid="login-error"]');
  assert.match(await error.innerText(), /wrong username or password/);
  assert.equal(new URL(page.url()).pathname, '/login');
  // The failed request answers 500 for server functions' errors; that is the only expected noise.
  assert.deepEqual(problems.filter((p) => !p.includes('status of 500')), []);
  await page.context().close();
});

test('the admin signs in, sees the dashboard and uses a hydrated control', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);
  const who = await page.waitForSelector('[data-testid="signed-in-as"]');
  assert.equal(await who.innerText(), 'Administrator');
  await waitHydrated(page);

  const spaces = page.locator('[data-testid="spaces"]');
  const toggle = page.locator('[data-testid="layout-toggle"]');
  assert.equal(await spaces.getAttribute('data-layout'), 'cards');
  await toggle.click();
  // Only the hydrated app reacts to the click: the server-rendered HTML has no handler.
  await page.waitForSelector('[data-testid="spaces"][data-layout="list"]');
  assert.equal(await toggle.innerText(), 'Show as cards');
  assert.equal(await toggle.getAttribute('aria-pressed'), 'true');
  await page.screenshot({ path: join(RESULTS, 'dashboard.png'), fullPage: true });

  // The session cookie is not readable from scripts.
  assert.equal(await page.evaluate(() => document.cookie.includes('hangar_session')), false);

  await page.click('text=Sign out');
  await page.waitForURL(`${hangar.url}/login`);
  await page.goto(`${hangar.url}/`);
  assert.equal(new URL(page.url()).pathname, '/login');
  assert.deepEqual(problems, []);
  await page.context().close();
});
