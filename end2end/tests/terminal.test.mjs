// The web terminal in a real browser: type into a space's shell, see the output, reload and
// find the same session.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { join } from 'node:path';
import { ADMIN_PASSWORD, RESULTS, api, launchBrowser, signIn, startHangar, watchedPage, waitShown } from './harness.mjs';

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


async function screenText(page) {
  return page.locator('.xterm-rows').innerText();
}

test('type in a space terminal, reload, and find the same session', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);

  const template = await api(page, 'POST', '/api/v1/templates', { name: 'box', image: 'hangar/busybox:test', compute_units: 0 });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'web-term', template_id: template.body.id });
  assert.equal(space.status, 201);
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  for (let i = 0; i < 100; i++) {
    if ((await api(page, 'GET', `/api/v1/spaces/${id}`)).body.state === 'running') break;
    await page.waitForTimeout(100);
  }

  // The dashboard lists it with a way in.
  await page.goto(`${hangar.url}/`);
  await page.click('[data-space="web-term"] >> text=Open terminal');
  await waitShown(page, '[data-testid="terminal-status"]:has-text("connected")');
  const url = new URL(page.url());
  assert.equal(url.pathname, `/spaces/${id}/terminal`);
  const session = url.searchParams.get('session');
  assert.match(session, /^[0-9a-f-]{36}$/);

  const marker = `hello-${Math.floor(Math.random() * 1e6)}`;
  await page.click('[data-testid="terminal"]');
  await page.keyboard.type(`echo ${marker.replace('-', '-$((0+0))')}`);
  await page.keyboard.press('Enter');
  await page.waitForFunction((m) => document.querySelector('.xterm-rows')?.innerText.includes(m), marker.replace('-', '-0'));
  await page.screenshot({ path: join(RESULTS, 'terminal.png') });

  // A reload keeps the session id and shows the same shell's screen.
  await page.reload();
  await waitShown(page, '[data-testid="terminal-status"]:has-text("connected")');
  assert.equal(new URL(page.url()).searchParams.get('session'), session);
  await page.waitForFunction((m) => document.querySelector('.xterm-rows')?.innerText.includes(m), marker.replace('-', '-0'));
  assert.ok((await screenText(page)).includes(marker.replace('-', '-0')));

  assert.equal((await api(page, 'DELETE', `/api/v1/spaces/${id}`)).status, 202);
  await page.waitForSelector('[data-testid="terminal-status"]:has-text("ended")');
  assert.deepEqual(problems, []);
  await page.context().close();
});

test('after a reload, scrolling up shows the output that scrolled off before it', async () => {
  const { page, problems } = await watchedPage(chromium.browser);
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);
  const template = await api(page, 'POST', '/api/v1/templates', { name: 'history', image: 'hangar/busybox:test', compute_units: 0 });
  assert.equal(template.status, 201, JSON.stringify(template.body));
  const space = await api(page, 'POST', '/api/v1/spaces', { name: 'history', template_id: template.body.id });
  const id = space.body.id;
  assert.equal((await api(page, 'POST', `/api/v1/spaces/${id}/start`)).status, 202);
  for (let i = 0; i < 100; i++) {
    if ((await api(page, 'GET', `/api/v1/spaces/${id}`)).body.state === 'running') break;
    await page.waitForTimeout(100);
  }
  await page.goto(`${hangar.url}/spaces/${id}/terminal`);
  await waitShown(page, '[data-testid="terminal-status"]:has-text("connected")');
  await page.click('[data-testid="terminal"]');
  await page.keyboard.type('seq 1 3000; echo done-$((1+1))');
  await page.keyboard.press('Enter');
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('done-2'));

  await page.reload();
  await waitShown(page, '[data-testid="terminal-status"]:has-text("connected")');
  await page.waitForFunction(() => document.querySelector('.xterm-rows')?.innerText.includes('done-2'));
  // Scroll the terminal back: lines long gone from the screen are there, once each.
  await page.hover('[data-testid="terminal"]');
  let shown = '';
  // The wheel moves a few lines a turn; a page at a time (Shift+PageUp, as in xterm) gets
  // 1,000 lines back in a bounded number of steps.
  await page.mouse.wheel(0, -600);
  let previous = '';
  for (let i = 0; i < 300 && !/^2000$/m.test(shown); i++) {
    await page.keyboard.press('Shift+PageUp');
    await page.waitForTimeout(10);
    previous = shown;
    shown = await screenText(page);
  }
  assert.equal(shown.split('\n').filter((line) => line === '2000').length, 1, shown);
  // This page and the one below it overlap by a line: together they hold 1999 to 2001 in
  // order, once each.
  const seen = `${shown}\n${previous}`.split('\n').filter((line, i, all) => all.indexOf(line) === i);
  const around = seen.filter((line) => ['1999', '2000', '2001'].includes(line));
  assert.deepEqual(around, ['1999', '2000', '2001'], seen.join(' '));
  await page.screenshot({ path: join(RESULTS, 'terminal-history.png') });

  assert.equal((await api(page, 'DELETE', `/api/v1/spaces/${id}`)).status, 202);
  assert.deepEqual(problems, []);
  await page.context().close();
});
