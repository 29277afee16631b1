// Code served from a space never runs on Hangar's origin (#26, item 1), in a real browser and
// with the default configuration (no --public-url, no --apps-domain): a sharee serves a page
// on a port of the owner's space (busybox httpd, uploaded and started through Hangar as the
// sharee); the owner opens it from the space page. It opens on the port's own origin under
// apps.localhost, and its script can neither read the owner's account nor change it: its
// fetches to `/api/v1/...` (on its own origin, or on Hangar's with the owner's cookies) fail, no
// token is made, and Hangar's pages refuse to be framed by it.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

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

// The sharee's page: every way its script could reach the owner's account, each written down
// with what came back.
function hostilePage(hangarOrigin) {
  return `<!DOCTYPE html><html><head><meta charset="utf-8"><title>innocent</title></head><body>
<pre id="results">running</pre>
<iframe id="framed" name="framed" src="${hangarOrigin}/profile"></iframe>
<script>
const HANGAR = ${JSON.stringify(hangarOrigin)};
const mint = JSON.stringify({ name: 'stolen', scopes: ['credentials'] });
const json = { 'content-type': 'application/json' };
async function attempt(name, run) {
  try {
    const r = await run();
    const text = r.type === 'opaque' ? '' : (await r.text()).slice(0, 300);
    return name + ': ' + r.status + ' ' + r.type + ' ' + text.replace(/\\s+/g, ' ');
  } catch (e) {
    return name + ': failed ' + e.name;
  }
}
(async () => {
  const lines = [
    await attempt('app-file', () => fetch('hello.txt')),
    await attempt('here-mint', () => fetch('/api/v1/me/tokens', { method: 'POST', credentials: 'include', headers: json, body: mint })),
    await attempt('here-me', () => fetch('/api/v1/me', { credentials: 'include' })),
    await attempt('hangar-mint', () => fetch(HANGAR + '/api/v1/me/tokens', { method: 'POST', credentials: 'include', headers: json, body: mint })),
    await attempt('hangar-mint-simple', () => fetch(HANGAR + '/api/v1/me/tokens', { method: 'POST', credentials: 'include', mode: 'no-cors', headers: { 'content-type': 'text/plain' }, body: mint })),
    await attempt('hangar-me', () => fetch(HANGAR + '/api/v1/me', { credentials: 'include' })),
  ];
  document.getElementById('results').textContent = lines.join('\\n');
  document.body.dataset.done = 'true';
})();
</script></body></html>`;
}

test('a page a sharee serves, opened by the owner, cannot read or change the owner\'s account', async () => {
  const { page: owner, problems } = await watchedPage(chromium.browser);
  await signIn(owner, hangar.url, 'admin', ADMIN_PASSWORD);
  await owner.waitForURL(`${hangar.url}/`);
  const templates = await api(owner, 'GET', '/api/v1/templates');
  const template = templates.body.find((t) => t.name === 'default');
  assert.ok(template, 'the first run makes a default template');
  const made = await api(owner, 'POST', '/api/v1/spaces', { name: 'web', template_id: template.id });
  assert.equal(made.status, 201, JSON.stringify(made.body));
  const id = made.body.id;
  assert.equal((await api(owner, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  const bob = await api(owner, 'POST', '/api/v1/users', { username: 'bob', password: 'bob-password-1' });
  assert.equal(bob.status, 201, JSON.stringify(bob.body));
  assert.equal((await api(owner, 'PUT', `/api/v1/spaces/${id}/shares/bob`)).status, 200);
  const tokensBefore = (await api(owner, 'GET', '/api/v1/me/tokens')).body;
  try {
    for (let i = 0; i < 600; i++) {
      if ((await api(owner, 'GET', `/api/v1/spaces/${id}`)).body.state === 'running') break;
      await owner.waitForTimeout(100);
    }

    // The sharee: uploads busybox and the page through Hangar, starts a server in their shell.
    const sharee = await watchedPage(chromium.browser);
    await signIn(sharee.page, hangar.url, 'bob', 'bob-password-1');
    await sharee.page.waitForURL(`${hangar.url}/`);
    const [session] = (await sharee.page.context().cookies(hangar.url)).filter((c) => c.name === 'hangar_session');
    const upload = async (path, body) => {
      const response = await fetch(`${hangar.url}/api/v1/spaces/${id}/files?path=${encodeURIComponent(path)}&create`, {
        method: 'PUT', body, headers: { cookie: `hangar_session=${session.value}`, origin: hangar.url },
      });
      assert.equal(response.status, 201, `${path}: ${await response.text()}`);
    };
    await upload('/tmp/sharee/busybox', readFileSync('/bin/busybox'));
    await upload('/tmp/sharee/www/index.html', hostilePage(hangar.url));
    await upload('/tmp/sharee/www/hello.txt', 'from-the-app');
    await sharee.page.goto(`${hangar.url}/spaces/${id}/terminal`);
    await sharee.page.waitForSelector('[data-testid="terminal-status"]:has-text("connected")');
    await sharee.page.click('[data-testid="terminal"]');
    await sharee.page.keyboard.type('chmod +x /tmp/sharee/busybox && /tmp/sharee/busybox httpd -p 8080 -h /tmp/sharee/www && echo serv-$((1+1))ing');
    await sharee.page.keyboard.press('Enter');
    await sharee.page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('serv-2ing'));

    // The owner opens it from the space page: on the port's own origin.
    await owner.goto(`${hangar.url}/spaces/${id}`);
    await waitHydrated(owner);
    const row = owner.locator('[data-testid="ports"] tr[data-port="8080"]');
    await row.waitFor({ timeout: 30_000 });
    const [app] = await Promise.all([
      owner.context().waitForEvent('page'),
      row.locator('[data-testid="open-port"]').click(),
    ]);
    await app.waitForSelector('body[data-done="true"]', { timeout: 30_000 });
    const results = Object.fromEntries((await app.locator('#results').innerText()).split('\n')
      .map((line) => [line.slice(0, line.indexOf(':')), line.slice(line.indexOf(':') + 2)]));

    // Its script ran (on its own origin, its own files answer)...
    assert.match(results['app-file'], /^200 basic from-the-app/);
    // ...and reached nothing of the owner's: `/api/...` on its origin is the app's own (busybox
    // has no such file), and Hangar's origin answers it nothing it can read.
    for (const name of ['here-mint', 'here-me']) {
      assert.doesNotMatch(results[name], /^20\d/, `${name}: ${results[name]}`);
      assert.doesNotMatch(results[name], /hgr_|"username"/, `${name}: ${results[name]}`);
    }
    assert.equal(results['hangar-mint'], 'failed TypeError');
    assert.equal(results['hangar-me'], 'failed TypeError');
    assert.equal(results['hangar-mint-simple'], '0 opaque ');
    // No token was made, whatever the browser sent.
    assert.deepEqual((await api(owner, 'GET', '/api/v1/me/tokens')).body, tokensBefore);
    // It ran on the port's own origin.
    assert.equal(new URL(app.url()).host, `8080--web--admin.apps.localhost:${hangar.port}`);
    // Hangar's page was not shown inside it: Chromium refused the frame (X-Frame-Options).
    const framed = app.frames().find((f) => f.name() === 'framed');
    assert.ok(framed, 'the frame exists');
    assert.equal(framed.url(), 'chrome-error://chromewebdata/', 'Hangar\'s page was framed');
    // The owner's app session is for that app only: Hangar's session never reached it.
    const appCookies = await owner.context().cookies(app.url());
    assert.deepEqual(appCookies.map((c) => c.name), ['hangar_app']);
    await app.close();
    assert.deepEqual(sharee.problems, []);
    await sharee.page.context().close();
  } finally {
    await api(owner, 'DELETE', `/api/v1/spaces/${id}`);
  }
  assert.deepEqual(problems, []);
  await owner.context().close();
});
