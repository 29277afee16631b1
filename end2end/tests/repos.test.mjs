// A space from a repository in a real browser: a README's link `/new?repo=…&branch=…` opens
// the create dialog filled in; once created and started, the space page shows the clone's
// output and its result, live, and a terminal opens in the cloned folder. The repository is served by a git daemon of the test's own
// (scripts/test-git-server.sh: in a network namespace, reached by spaces like the world).
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, RESULTS, ROOT, api, launchBrowser, signInToDashboard, startHangar, waitHydrated, waitShown, watchedPage } from './harness.mjs';

const SCRIPT = join(ROOT, 'scripts', 'test-git-server.sh');
// Apart from the numbers the Rust tests take (1 to 240).
const NUMBER = String(241 + (process.pid % 10));
let gitRoot;
let gitBase;
let hangar;
let chromium;

before(async () => {
  gitRoot = mkdtempSync(join(tmpdir(), 'hangar-e2e-git-'));
  execFileSync(SCRIPT, ['down', NUMBER, gitRoot]);
  // Its first line: the anonymous server's base URL.
  gitBase = execFileSync(SCRIPT, ['up', NUMBER, gitRoot], { encoding: 'utf8' }).split('\n')[0];
  // Usage sampled every second, for the space page's charts.
  hangar = await startHangar({ HANGAR_USAGE_INTERVAL_SECS: '1' });
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
  if (gitRoot) {
    execFileSync(SCRIPT, ['down', NUMBER, gitRoot]);
    rmSync(gitRoot, { recursive: true, force: true });
  }
});

test('/new?repo= fills the create dialog, and the space page shows the clone', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  const template = await api(page, 'POST', '/api/v1/templates', {
    name: 'debian', image: 'hangar/default:bookworm', compute_units: 0,
    volumes: [{ name: 'home', mount_path: '/root', size_gib: 1 }],
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));

  const repo = `${gitBase}project.git`;
  await page.goto(`${hangar.url}/new?repo=${encodeURIComponent(repo)}&branch=feature`);
  await waitHydrated(page);
  await waitShown(page, '[data-testid="template-picker"] input[type="radio"]:checked');
  assert.equal(await page.inputValue('[data-testid="repo-url"]'), repo);
  assert.equal(await page.inputValue('[data-testid="repo-branch"]'), 'feature');
  await page.fill('[data-testid="space-name"]', 'from-repo');
  await page.click('[data-testid="create"]');
  await page.waitForURL(/\/spaces\/[0-9a-f-]+$/);
  await waitHydrated(page);
  const waiting = await waitShown(page, '[data-testid="clone-state"][data-state="waiting"]');
  assert.match(await waiting.innerText(), /project\.git \(branch feature\) into ~\/project/);

  await page.click('[data-testid="space-details"] [data-testid="start"]');
  // Pushed by the live stream: the page is not reloaded.
  await waitShown(page, '[data-testid="clone-state"][data-state="cloned"]', 90_000);
  const log = await page.innerText('[data-testid="setup-log"]');
  assert.match(log, /\$ git clone .*project\.git ~\/project/);
  assert.match(log, /Cloning into 'project'/);
  await page.screenshot({ path: join(RESULTS, 'repos-cloned.png'), fullPage: true });
  const space = await api(page, 'GET', page.url().replace(hangar.url, '').replace('/spaces/', '/api/v1/spaces/'));
  assert.equal(space.body.repository.state, 'cloned');
  assert.equal(space.body.state, 'running');

  // A terminal opens in the cloned folder, on the branch asked for.
  await page.goto(`${hangar.url}/spaces/${space.body.id}/terminal`);
  await waitShown(page, '[data-testid="terminal-status"]:has-text("connected")');
  await page.click('[data-testid="terminal"]');
  await page.keyboard.type('echo "at:$(pwd):$(git rev-parse --abbrev-ref HEAD)"\n');
  await page.waitForFunction(() => /at:\/root\/project:feature/.test(document.querySelector('.xterm-rows')?.innerText ?? ''));
  await page.screenshot({ path: join(RESULTS, 'repos-terminal.png') });

  // The space page charts what the space used (drawn on the server, kept by hydration), once
  // the sampler has points.
  const usagePath = `/api/v1/spaces/${space.body.id}/usage?range=hour`;
  for (let tries = 0; ; tries++) {
    const usage = await api(page, 'GET', usagePath);
    assert.equal(usage.status, 200, JSON.stringify(usage.body));
    if (usage.body.points.length > 0) break;
    assert.ok(tries < 60, `no usage points: ${JSON.stringify(usage.body)}`);
    await new Promise((done) => setTimeout(done, 500));
  }
  await page.goto(`${hangar.url}/spaces/${space.body.id}`);
  await waitHydrated(page);
  // (A line of one point, or a flat one, has no area: attached, not "visible".)
  const line = await page.waitForSelector('[data-testid="usage-CPU"] polyline', { state: 'attached' });
  assert.match(await line.getAttribute('points'), /^[\d.]+,[\d.]+( [\d.]+,[\d.]+)*$/);
  assert.match(await page.innerText('[data-testid="usage-Memory"] [data-testid="usage-now"]'), /iB$/);
  await page.screenshot({ path: join(RESULTS, 'space-usage.png'), fullPage: true });
  assert.deepEqual(problems, []);
});

test('the profile makes an SSH key for git, and the dashboard charts quota use over time', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signInToDashboard(page, hangar.url, 'admin', ADMIN_PASSWORD);
  // The first test's space ran: its compute units show in the admin's quota use.
  await page.click('[data-testid="quota-usage-details"] summary');
  // Attached, not visible: a flat line (no compute units used) has no height.
  const compute = await page.waitForSelector('[data-testid="quota-usage"] [data-testid="usage-Compute"] polyline', { state: 'attached', timeout: 60_000 });
  assert.match(await compute.getAttribute('points'), /^[\d.]+,[\d.]+( [\d.]+,[\d.]+)*$/);
  assert.match(await page.innerText('[data-testid="usage-Spaces"] [data-testid="usage-now"]'), /^highest \d+/);

  await page.goto(`${hangar.url}/profile`);
  await waitHydrated(page);
  await page.click('[data-testid="make-git-ssh-key"]');
  const shown = await waitShown(page, '[data-testid="git-ssh-public-key"]');
  const key = await api(page, 'GET', '/api/v1/me/git-ssh-key');
  assert.equal(key.status, 200, JSON.stringify(key.body));
  assert.match(key.body.public_key, /^ssh-ed25519 \S+ hangar:admin$/);
  assert.equal((await shown.innerText()).trim(), key.body.public_key);
  assert.deepEqual(problems, []);
});
