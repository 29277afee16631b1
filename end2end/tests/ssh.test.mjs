// SSH in the browser's pages: the ~/.ssh/config blocks to copy (profile and space page), and
// the space page's count of live sessions following a real `ssh` connection as it opens and
// closes.
import assert from 'node:assert/strict';
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, pageLog, signIn, startHangar, watchedPage, waitHydrated } from './harness.mjs';

let hangar;
let chromium;
let keys;

before(async () => {
  hangar = await startHangar();
  chromium = await launchBrowser();
  keys = mkdtempSync(join(tmpdir(), 'hangar-e2e-ssh-'));
  execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', join(keys, 'key')]);
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
  if (keys) rmSync(keys, { recursive: true, force: true });
});

test('the profile and the space page give ~/.ssh/config blocks and count live SSH sessions', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);
  const key = await api(page, 'POST', '/api/v1/me/ssh-keys', { public_key: readFileSync(join(keys, 'key.pub'), 'utf8') });
  assert.equal(key.status, 201, JSON.stringify(key.body));
  const template = await api(page, 'POST', '/api/v1/templates', {
    name: 'box', image: 'hangar/busybox:test', compute_units: 0, features: ['terminal', 'ssh'],
  });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'sshbox', template_id: template.body.id });
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  for (let i = 0; i < 100; i++) {
    if ((await api(page, 'GET', `/api/v1/spaces/${id}`)).body.state === 'running') break;
    await page.waitForTimeout(100);
  }
  const config = (await api(page, 'GET', '/api/v1/me/ssh-config')).body;
  assert.equal(config.enabled, true);
  assert.ok(config.port > 0);

  // The profile: every space's block, ready to copy.
  await page.goto(`${hangar.url}/profile`);
  const block = page.locator('[data-testid="ssh-config-text"]');
  await block.waitFor();
  const text = await block.inputValue();
  assert.ok(text.includes(`Host hangar-sshbox\n  HostName 127.0.0.1\n  Port ${config.port}\n  User sshbox\n`), text);

  // The space page: its own block and command, and who is connected, live.
  await page.goto(`${hangar.url}/spaces/${id}`);
  await waitHydrated(page);
  assert.equal(await page.locator('[data-testid="ssh-command"]').innerText(), `ssh -p ${config.port} sshbox@127.0.0.1`);
  assert.ok((await page.locator('[data-testid="space-ssh-config"]').inputValue()).includes('User sshbox'));
  await page.waitForSelector('[data-testid="live-sessions"]:has-text("0 SSH connections")');

  const ssh = spawn('ssh', [
    '-F', '/dev/null', '-i', join(keys, 'key'), '-o', 'IdentitiesOnly=yes', '-o', 'BatchMode=yes',
    '-o', `UserKnownHostsFile=${join(keys, 'known_hosts')}`, '-o', 'StrictHostKeyChecking=accept-new',
    '-p', String(config.port), 'sshbox@127.0.0.1', 'echo in; sleep 60',
  ], { stdio: ['ignore', 'pipe', 'pipe'] });
  let sshOutput = '';
  ssh.stdout.on('data', (chunk) => { sshOutput += chunk; });
  ssh.stderr.on('data', (chunk) => { sshOutput += chunk; });
  // On a miss, what each side saw: the page, the API, ssh, the page's requests, the server.
  const waitForCount = async (text) => {
    try {
      await page.waitForSelector(`[data-testid="live-sessions"]:has-text("${text}")`, { timeout: 10_000 });
    } catch (error) {
      const shown = await page.locator('[data-testid="live-sessions"]').innerText({ timeout: 1_000 }).catch(() => '(none)');
      const sessions = await api(page, 'GET', `/api/v1/spaces/${id}/sessions`).catch((e) => e.message);
      throw new Error([
        error.message,
        `the page shows: ${shown}`,
        `the API says: ${JSON.stringify(sessions?.body ?? sessions)}`,
        `ssh (exit ${ssh.exitCode}, signal ${ssh.signalCode}): ${sshOutput}`,
        `the page's last messages:\n${pageLog(page)}`,
        `hangar's log:\n${hangar.output().slice(-4000)}`,
      ].join('\n'));
    }
  };
  try {
    await waitForCount('1 SSH connection,');
    await page.screenshot({ path: join(RESULTS, 'space-ssh.png'), fullPage: true });
  } finally {
    ssh.kill();
  }
  await waitForCount('0 SSH connections');

  assert.equal((await api(page, 'DELETE', `/api/v1/spaces/${id}`)).status, 202);
  assert.deepEqual(problems, []);
  await page.context().close();
});
