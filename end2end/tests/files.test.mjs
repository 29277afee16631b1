// The file browser on a space's page in a real browser: drop a file in, pick one, download a
// folder as tar, delete; each transfer with its progress row.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

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

/// Writes a file into the space through the JSON API, from the page (its cookie and Origin).
async function put(page, id, path, text) {
  return page.evaluate(async ({ id, path, text }) => {
    const response = await fetch(`/api/v1/spaces/${id}/files?path=${encodeURIComponent(path)}&create`, { method: 'PUT', body: text });
    return response.status;
  }, { id, path, text });
}

async function read(page, id, path) {
  return page.evaluate(async ({ id, path }) => {
    const response = await fetch(`/api/v1/spaces/${id}/files?path=${encodeURIComponent(path)}`);
    return { status: response.status, text: await response.text() };
  }, { id, path });
}

test('drop a file into a space, pick another, download a folder as tar, delete', async () => {
  const { page, problems } = await watchedPage(chromium.browser, { acceptDownloads: true });
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);

  const template = await api(page, 'POST', '/api/v1/templates', {
    name: 'box', image: 'hangar/busybox:test', compute_units: 0, features: ['terminal', 'file_transfer'],
    volumes: [{ name: 'home', mount_path: '/home/dev', size_gib: 1 }],
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'files', template_id: template.body.id });
  assert.equal(space.status, 201);
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  for (let i = 0; i < 100; i++) {
    if ((await api(page, 'GET', `/api/v1/spaces/${id}`)).body.state === 'running') break;
    await page.waitForTimeout(100);
  }
  assert.equal(await put(page, id, '/home/dev/project/a.txt', 'alpha\n'), 201);
  assert.equal(await put(page, id, '/home/dev/project/sub/b.txt', 'beta\n'), 201);

  await page.goto(`${hangar.url}/spaces/${id}`);
  await waitHydrated(page);
  const files = page.locator('[data-testid="files"][data-dir="/home/dev"]');
  await files.locator('[data-testid="file-row"][data-name="project"]').waitFor();

  // Drag and drop: a file dropped anywhere on the panel goes into the folder shown.
  const dropped = await page.evaluateHandle(() => {
    const transfer = new DataTransfer();
    transfer.items.add(new File(['dropped by the browser\n'], 'dropped.txt', { type: 'text/plain' }));
    return transfer;
  });
  await files.dispatchEvent('dragover', { dataTransfer: dropped });
  await files.dispatchEvent('drop', { dataTransfer: dropped });
  await page.locator('[data-testid="transfer"][data-name="dropped.txt"][data-status="done"]').waitFor();
  await files.locator('[data-testid="file-row"][data-name="dropped.txt"]').waitFor();
  assert.deepEqual(await read(page, id, '/home/dev/dropped.txt'), { status: 200, text: 'dropped by the browser\n' });
  const bar = page.locator('[data-testid="transfer"][data-name="dropped.txt"] [role="progressbar"]');
  assert.equal(await bar.getAttribute('aria-valuenow'), '100');

  // The picker, into a folder opened from the listing.
  await files.locator('[data-testid="file-row"][data-name="project"] [data-testid="file-open"]').click();
  await page.locator('[data-testid="files"][data-dir="/home/dev/project"] [data-testid="file-row"][data-name="sub"]').waitFor();
  await page.setInputFiles('[data-testid="files-picker"]', { name: 'picked.bin', mimeType: 'application/octet-stream', buffer: Buffer.alloc(300_000, 7) });
  await page.locator('[data-testid="transfer"][data-name="picked.bin"][data-status="done"]').waitFor();
  await page.locator('[data-testid="file-row"][data-name="picked.bin"]').waitFor();
  assert.equal((await read(page, id, '/home/dev/project/picked.bin')).text.length, 300_000);

  // Back up by the breadcrumbs, then the folder as a tar.
  await page.locator('[data-testid="files-breadcrumbs"] button', { hasText: 'dev' }).click();
  const row = page.locator('[data-testid="files"][data-dir="/home/dev"] [data-testid="file-row"][data-name="project"]');
  const [download] = await Promise.all([
    page.waitForEvent('download'),
    row.locator('[data-testid="file-download"]').click(),
  ]);
  assert.equal(download.suggestedFilename(), 'project.tar');
  const saved = join(RESULTS, 'project.tar');
  await download.saveAs(saved);
  const names = execFileSync('tar', ['-tf', saved], { encoding: 'utf8' }).split('\n').filter(Boolean);
  for (const name of ['project/', 'project/a.txt', 'project/sub/b.txt', 'project/picked.bin']) {
    assert.ok(names.includes(name), `${name} in ${names}`);
  }
  assert.equal(execFileSync('tar', ['-xOf', saved, 'project/sub/b.txt'], { encoding: 'utf8' }), 'beta\n');
  await page.locator('[data-testid="transfer"][data-name="project.tar"][data-status="done"]').waitFor();
  await page.screenshot({ path: join(RESULTS, 'files.png'), fullPage: true });

  // Deleting asks first, then the row goes.
  const gone = page.locator('[data-testid="file-row"][data-name="dropped.txt"]');
  await gone.locator('[data-testid="file-delete"]').click();
  await gone.locator('[data-testid="file-delete-confirm"]').click();
  await gone.waitFor({ state: 'detached' });
  assert.equal((await read(page, id, '/home/dev/dropped.txt')).status, 404);

  assert.deepEqual(problems, []);
  assert.equal((await api(page, 'DELETE', `/api/v1/spaces/${id}`)).status, 202);
  await page.context().close();
});
