// Ports, public links and feature permissions in a real browser, with apps served by path
// (`--path-apps true`, asked for explicitly: risky, never the default): the space page lists
// what listens in the space, live, and opens it; a port is made public, opened without signing
// in, listed on the profile and revoked there; an admin's rule takes a feature away and the
// space page says so. The default (apps on origins of their own) is app_origin.test.mjs's.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

let hangar;
let chromium;

before(async () => {
  hangar = await startHangar({ HANGAR_DEFAULT_TEMPLATE: 'false', HANGAR_PATH_APPS: 'true' });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
});

const APP = 'mkdir -p /www && echo hello-from-the-space > /www/index.html && httpd -f -p 8080 -h /www & '
  + "trap 'exit 0' TERM; while :; do sleep 3600 & wait $!; done";

test('open a listening port, publish it, revoke it from the profile; a rule takes tunnels away', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);
  const template = await api(page, 'POST', '/api/v1/templates', {
    name: 'web', image: 'hangar/busybox:test', compute_units: 0,
    features: ['terminal', 'port_forwarding', 'tunnels'], command: ['/bin/sh', '-c', APP],
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'web', template_id: template.body.id });
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  try {
    await page.goto(`${hangar.url}/spaces/${id}`);
    await waitHydrated(page);
    // The port shows up by itself once the space runs and httpd listens.
    const row = page.locator('[data-testid="ports"] tr[data-port="8080"]');
    await row.waitFor({ timeout: 30_000 });
    const [app] = await Promise.all([
      page.context().waitForEvent('page'),
      row.locator('[data-testid="open-port"]').click(),
    ]);
    await app.waitForLoadState();
    assert.equal(new URL(app.url()).pathname, '/spaces/admin/web/ports/8080/');
    assert.match(await app.locator('body').innerText(), /hello-from-the-space/);
    await app.close();

    // Published: the link is shown once, and works without signing in.
    await row.locator('[data-testid="publish"]').click();
    const link = (await page.locator('[data-testid="tunnel-link"] code').innerText()).trim();
    assert.match(link, /^http:\/\/127\.0\.0\.1:\d+\/t\/[0-9a-f]{32}\/$/);
    const anonymous = await fetch(link);
    assert.equal(anonymous.status, 200);
    assert.match(await anonymous.text(), /hello-from-the-space/);
    await page.waitForSelector('[data-testid="tunnels"] tr[data-port="8080"]');

    // The profile lists it; revoking it there ends the link at once.
    await page.goto(`${hangar.url}/profile`);
    await waitHydrated(page);
    await page.click('[data-testid="my-tunnels"] [data-testid="revoke-tunnel"]');
    await page.click('[data-testid="my-tunnels"] [data-testid="revoke-tunnel-confirm"]');
    await page.waitForSelector('[data-testid="my-tunnels"] [data-testid="no-tunnels"]');
    assert.equal((await fetch(link)).status, 404);

    // Tunnels for nobody: the admin page shows the rule, the space page no longer offers them.
    await page.goto(`${hangar.url}/admin/features`);
    await waitHydrated(page);
    await page.selectOption('[data-testid="rule-scope"]', 'everyone');
    await page.selectOption('[data-testid="rule-feature"]', 'tunnels');
    await page.selectOption('[data-testid="rule-effect"]', 'deny');
    await page.click('[data-testid="set-rule"]');
    await page.waitForSelector('[data-testid="feature-rules"] tr[data-feature="tunnels"]');
    await page.goto(`${hangar.url}/spaces/${id}`);
    await waitHydrated(page);
    const allowed = await page.locator('[data-testid="allowed-features"]').innerText();
    assert.match(allowed, /Ports/);
    assert.doesNotMatch(allowed, /Public links/);
    assert.equal(await page.locator('[data-testid="publish"]').count(), 0);
  } finally {
    await api(page, 'DELETE', `/api/v1/spaces/${id}`);
  }
  assert.deepEqual(problems, []);
  await page.context().close();
});
