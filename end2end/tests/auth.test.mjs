// Signing in from a real browser, and a control that only works once the wasm has hydrated.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated, signInToDashboard } from './harness.mjs';

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

test('after signing in, ?next= leads only to a page of Hangar, as the browser reads it', async () => {
  const origin = new URL(hangar.url).origin;
  // A browser strips tabs and newlines and reads `\` as `/`: each of these, decoded once by
  // the page, looks like a path and leads to example.org.
  const cases = [
    ['/%09/example.org', '/'],
    ['/%0A/example.org', '/'],
    ['/%5Cexample.org', '/'],
    ['/.//example.org', '/'],
    ['%2F%2Fexample.org', '/'],
    ['/profile', '/profile'],
  ];
  for (const [next, landing] of cases) {
    const { page, problems } = await watchedPage(chromium.browser);
    const elsewhere = [];
    await page.context().route((url) => url.origin !== origin, (route) => {
      elsewhere.push(route.request().url());
      return route.abort('blockedbyclient');
    });
    await page.goto(`${hangar.url}/login?next=${next}`);
    await waitHydrated(page);
    await page.fill('input[name="username"]', 'admin');
    await page.fill('input[name="password"]', ADMIN_PASSWORD);
    await page.click('button[type="submit"]');
    await page.waitForURL((url) => url.origin === origin && url.pathname !== '/login', { timeout: 15_000 })
      .catch(() => assert.fail(`next=${next}: left for ${page.url()} (requests elsewhere: ${elsewhere})`));
    assert.equal(new URL(page.url()).pathname, landing, `next=${next}`);
    assert.deepEqual(elsewhere, [], `next=${next}`);
    await waitHydrated(page);
    assert.deepEqual(problems, [], `next=${next}`);
    await page.context().close();
  }
});

test('a page loaded on demand preloads its wasm part, hydrates, and leads on by client-side navigation', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  const preloads = async (path) => {
    const response = await page.request.get(`${hangar.url}${path}`);
    assert.equal(new URL(response.url()).pathname, path, `${path} was answered by ${response.url()}`);
    const html = await response.text();
    const links = [...html.matchAll(/<link [^>]*>/g)].map((m) => m[0]).filter((l) => l.includes('rel="preload"'));
    return [...new Set(links.map((l) => l.match(/href="\/pkg\/([^"]+)\.wasm"/)?.[1]).filter(Boolean))].sort();
  };
  // The dashboard needs the main wasm only; the admin pages' part comes with its shared chunks.
  assert.deepEqual(await preloads('/'), ['hangar']);
  const admin = await preloads('/admin/users');
  assert.ok(admin.includes('split_admin_view'), `admin preloads: ${admin}`);
  assert.ok(!admin.some((name) => /^split_(space|profile)_view$/.test(name)), `admin preloads: ${admin}`);

  // A main wasm works only with the parts built with it: browsers revalidate them all.
  for (const file of ['hangar.wasm', 'split_admin_view.wasm']) {
    const response = await page.request.get(`${hangar.url}/pkg/${file}`);
    assert.equal(response.status(), 200, file);
    assert.equal(response.headers()['cache-control'], 'no-cache', file);
  }

  // Fetched when first shown, by a client-side navigation from the dashboard.
  const parts = [];
  page.on('request', (request) => { if (/\/pkg\/split_/.test(request.url())) parts.push(request.url()); });
  await page.click('[data-testid="admin-link"]');
  // The admin section opens on its overview, whose figures are the API's.
  const running = await page.waitForSelector('[data-testid="overview-running"]');
  assert.equal(parts.length, 1, `parts fetched: ${parts}`);
  assert.match(parts[0], /\/split_admin_view\.wasm$/);
  const overview = await api(page, 'GET', '/api/v1/admin/overview');
  assert.equal(overview.status, 200, JSON.stringify(overview.body));
  assert.match(await running.innerText(), new RegExp(`^${overview.body.running_spaces} running spaces, ${overview.body.running_compute_units} compute units in use$`));
  assert.equal(await page.locator('[data-testid="overview-nodes"] tbody tr').count(), overview.body.nodes.length);
  assert.ok(overview.body.nodes.length >= 1);

  // Loaded directly, the page hydrates once its part is in: its form is handled in the page
  // (the server-rendered form alone would reload the document).
  await page.goto(`${hangar.url}/admin/groups`);
  await waitHydrated(page);
  await page.evaluate(() => { window.__hangarMark = 'same document'; });
  await page.click('[data-testid="new-group"]');
  await page.fill('[data-testid="group-name"]', 'on-demand');
  await page.click('[data-testid="create-group"]');
  await page.waitForSelector('[data-testid="group-card"][data-group="on-demand"]');
  assert.equal(await page.evaluate(() => window.__hangarMark), 'same document');
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('a wasm part whose download fails is fetched again, and one that never comes says so', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);

  // The admin part's first two downloads fail; the page comes with the third.
  let adminTries = 0;
  await page.route('**/pkg/split_admin_view.wasm', (route) => {
    adminTries += 1;
    return adminTries <= 2 ? route.abort('failed') : route.continue();
  });
  await page.click('[data-testid="admin-link"]');
  await page.waitForSelector('[data-testid="overview-running"]');
  assert.ok(adminTries >= 3, `the admin part was asked for ${adminTries} times`);

  // The profile part never comes: the page says so, and the rest of the app still works.
  let profileTries = 0;
  await page.route('**/pkg/split_profile_view.wasm', (route) => {
    profileTries += 1;
    return route.abort('failed');
  });
  await page.click('a[href="/profile"]');
  const notice = await page.waitForSelector('[role="alert"]:has-text("could not be downloaded")', { timeout: 20_000 });
  assert.match(await notice.innerText(), /reload the page/i);
  assert.ok(profileTries >= 5, `the profile part was asked for ${profileTries} times`);
  await page.click('[data-testid="admin-link"]');
  await page.waitForSelector('[data-testid="overview-running"]');

  // What the failures logged, and nothing else: no panic, no other error.
  const expected = /split_(admin|profile)_view\.wasm|Failed to fetch|net::ERR_FAILED/;
  assert.deepEqual(problems.filter((p) => !expected.test(p)), []);
  assert.ok(!problems.some((p) => /panicked|unreachable/.test(p)), problems.join('\n'));
  await page.context().close();
});

test("a page whose code is dropped on the way loads it again (a reloaded terminal connects)", async () => {
  // What a change of the machine's network does to requests in flight (Docker adds and
  // removes an interface per container): the page's first tries at its script and its wasm
  // fail. Without a second try the page stays dead: nothing hydrates, a terminal never connects.
  const { page, problems } = await watchedPage(chromium.browser);
  const tries = { js: 0, wasm: 0 };
  await page.route('**/pkg/hangar.js', (route) => (++tries.js === 1 ? route.abort('internetdisconnected') : route.continue()));
  await page.route('**/pkg/hangar.wasm', (route) => (++tries.wasm <= 2 ? route.abort('internetdisconnected') : route.continue()));
  await page.goto(`${hangar.url}/login`);
  await waitHydrated(page);
  assert.ok(tries.js >= 2 && tries.wasm >= 3, `script asked for ${tries.js} times, wasm ${tries.wasm} times`);
  // Signing in works: the page's code runs.
  await page.fill('input[name="username"]', 'admin');
  await page.fill('input[name="password"]', ADMIN_PASSWORD);
  await page.click('button[type="submit"]');
  await page.waitForURL(`${hangar.url}/`);
  const expected = /hangar\.(js|wasm)|did not load|ERR_INTERNET_DISCONNECTED|Failed to fetch|dynamically imported module/;
  assert.deepEqual(problems.filter((p) => !expected.test(p)), []);
  await page.context().close();
});

test('a live stream the browser gives up on is opened again', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  // What a proxy in front of Hangar answers while Hangar restarts: not an event stream, so
  // the browser closes the stream for good instead of reconnecting by itself.
  let refused = 0;
  await page.route('**/api/v1/events', (route) => {
    if (refused >= 2) return route.continue();
    refused += 1;
    return route.fulfill({ status: 503, contentType: 'text/plain', body: 'restarting' });
  });
  await page.reload();
  await waitHydrated(page);
  await page.waitForSelector('[data-testid="live"][data-connected="true"]', { timeout: 20_000 });
  assert.equal(refused, 2);
  assert.deepEqual(problems.filter((p) => !/503 .*\/api\/v1\/events/.test(p)), []);
  await page.context().close();
});

test('a request the network drops is made again', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  // The dashboard's list is fetched once the live stream opens. Its first fetch fails as a
  // request does when the machine's network changes; nothing changes on the server after
  // it, so no event would ask for the list again.
  let calls = 0;
  await page.route('**/api/my_spaces*', (route) => {
    calls += 1;
    return calls === 1 ? route.abort('failed') : route.continue();
  });
  await page.reload();
  await waitHydrated(page);
  // The list is asked for again with no event to ask for it (the error it showed meanwhile
  // may last only the second before that, too short to wait for reliably).
  for (let waited = 0; calls < 2 && waited < 10_000; waited += 100) await page.waitForTimeout(100);
  assert.equal(calls, 2, `the list was fetched ${calls} time(s) after the page was reloaded`);
  await page.waitForSelector('[data-testid="no-spaces"]', { timeout: 10_000 });
  assert.equal(await page.locator('[data-testid="spaces"] .error').count(), 0);
  assert.deepEqual(problems.filter((p) => !/my_spaces.*ERR_FAILED|net::ERR_FAILED/.test(p)), []);
  await page.context().close();
});
