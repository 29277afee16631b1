// The apps of a space in a real browser, as Hangar serves them by default on one machine:
// "Open VS Code" opens code-server on the port's own origin under apps.localhost (which
// Chromium resolves to this machine without any DNS; signed in through Hangar with a one-time
// ticket) and edits a file of the space; "Open desktop" shows the space's desktop in noVNC
// through Hangar's WebSocket bridge. Uses the `full` template made on first run (image
// hangar/full:bookworm, `scripts/images.sh full`).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

let hangar;
let chromium;
let origin;

before(async () => {
  // The default configuration: no --public-url, no --apps-domain.
  hangar = await startHangar();
  origin = hangar.url;
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
});

async function runningFullSpace(page, name) {
  const templates = await api(page, 'GET', '/api/v1/templates');
  const full = templates.body.find((t) => t.name === 'full');
  assert.ok(full, 'the first run makes a full template');
  assert.deepEqual(full.features, ['terminal', 'ssh', 'code_server', 'vnc', 'port_forwarding', 'tunnels', 'file_transfer']);
  const space = await api(page, 'POST', '/api/v1/spaces', { name, template_id: full.id });
  assert.equal(space.status, 201, JSON.stringify(space.body));
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${space.body.id}/start`)).status, 202);
  for (let i = 0; i < 600; i++) {
    if ((await api(page, 'GET', `/api/v1/spaces/${space.body.id}`)).body.state === 'running') break;
    await page.waitForTimeout(100);
  }
  return space.body.id;
}

test('Open VS Code shows the editor with a file of the space opened, and Open desktop shows it in noVNC', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, origin, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${origin}/`);
  const id = await runningFullSpace(page, 'ide');
  try {
    await openBoth(page, id);
  } finally {
    // Not left running when the test fails.
    assert.equal((await api(page, 'DELETE', `/api/v1/spaces/${id}`)).status, 202);
  }
  assert.deepEqual(problems, []);
  await page.context().close();
});

async function openBoth(page, id) {
  execFileSync('docker', ['exec', `hangar-${id}`, 'sh', '-c', 'echo "hello from the space" > /root/hello.txt']);

  await page.goto(`${origin}/spaces/${id}`);
  await waitHydrated(page);
  // The ports listening in the space show up live, code-server's among them.
  await page.waitForSelector('[data-testid="ports"] tr[data-port="13337"]', { timeout: 60_000 });
  assert.match(await page.locator('[data-testid="allowed-features"]').innerText(), /VS Code in the browser/);

  // VS Code opens on the space's own origin, after a round trip through Hangar's.
  const [editor] = await Promise.all([
    page.context().waitForEvent('page'),
    page.click('[data-testid="open-vscode"]'),
  ]);
  await editor.waitForSelector('.monaco-workbench', { timeout: 120_000 });
  assert.equal(new URL(editor.url()).host, `13337--ide--admin.apps.localhost:${hangar.port}`);
  // Open the file from the explorer (the space's home), and find its text in the editor.
  const file = editor.locator('.explorer-folders-view .monaco-list-row', { hasText: 'hello.txt' });
  await file.waitFor({ timeout: 60_000 });
  await file.click();
  await editor.waitForSelector('.tab[aria-label*="hello.txt"]', { timeout: 30_000 });
  await editor.waitForFunction(
    // Monaco draws spaces as no-break spaces.
    () => [...document.querySelectorAll('.monaco-editor .view-lines')]
      .some((lines) => lines.innerText.replace(/\u00a0/g, ' ').includes('hello from the space')),
    null,
    { timeout: 30_000 },
  ).catch(async (e) => {
    await editor.screenshot({ path: join(RESULTS, 'vscode-failed.png') });
    throw e;
  });
  await editor.screenshot({ path: join(RESULTS, 'vscode.png') });
  // Hangar's session cookie never reached the app's origin.
  const appCookies = await page.context().cookies(editor.url());
  assert.deepEqual(appCookies.map((c) => c.name), ['hangar_app']);
  await editor.close();

  // The desktop: noVNC from Hangar's site, connected through Hangar's bridge.
  const [desktop] = await Promise.all([
    page.context().waitForEvent('page'),
    page.click('[data-testid="open-desktop"]'),
  ]);
  await desktop.waitForSelector('html.noVNC_connected', { timeout: 60_000 }).catch(async (e) => {
    // What the viewer said, what the desktop in the space logged, and the server's last words.
    await desktop.screenshot({ path: join(RESULTS, 'desktop-failed.png') });
    const status = await desktop.locator('#noVNC_status').innerText().catch(() => '(no status)');
    let inside = '';
    try {
      inside = execFileSync('docker', ['exec', `hangar-${id}`, 'sh', '-c', 'cat /tmp/hangar-desktop.log; ls -l /tmp/.X11-unix'], { encoding: 'utf8' });
    } catch (error) { inside = String(error); }
    throw new Error(`${e.message}\nat ${desktop.url()} noVNC said: ${status}\ndesktop log:\n${inside}\nhangar:\n${hangar.output().slice(-4000)}`);
  });
  await desktop.waitForFunction(() => {
    const canvas = document.querySelector('#noVNC_container canvas');
    return canvas && canvas.width >= 640 && canvas.height >= 400;
  }, null, { timeout: 30_000 });
  await desktop.screenshot({ path: join(RESULTS, 'desktop.png') });
  await desktop.close();
}
