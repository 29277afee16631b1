// Signing in through an identity provider in a real browser: a real OpenID provider on
// 127.0.0.1 (oidc-provider-mock, started by scripts/oidc-provider.py), Hangar with password
// sign-in kept for the break-glass admin, and people who click "Sign in with Acme ID".
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, test } from 'node:test';
import {
  ADMIN_PASSWORD, RESULTS, ROOT, api, launchBrowser, signIn, startHangar, waitHydrated, waitShown, watchedPage,
} from './harness.mjs';

let provider;
let hangar;
let chromium;

/// The provider of this file's tests: its issuer URL, and a way to set a person's claims. It
/// stops when its standard input closes (at `stop`, or when this process ends however it ends).
async function startProvider() {
  const python = join(ROOT, '.tools', 'venv', 'bin', 'python');
  if (!existsSync(python)) throw new Error(`${python} is missing: run scripts/setup.sh test (it installs oidc-provider-mock)`);
  const child = spawn(python, [join(ROOT, 'scripts', 'oidc-provider.py')], { stdio: ['pipe', 'pipe', 'ignore'] });
  const issuer = await new Promise((done, fail) => {
    const timer = setTimeout(() => fail(new Error('the OpenID provider did not start within 30 s')), 30_000);
    createInterface({ input: child.stdout }).once('line', (line) => { clearTimeout(timer); done(line.trim()); });
    child.once('exit', (code) => fail(new Error(`the OpenID provider exited (${code})`)));
  });
  return {
    issuer,
    async set(sub, claims) {
      const response = await fetch(`${issuer}/users/${encodeURIComponent(sub)}`, {
        method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(claims),
      });
      assert.equal(response.status, 204, await response.text());
    },
    async stop() {
      child.stdin.end();
      child.kill();
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
    },
  };
}

before(async () => {
  provider = await startProvider();
  hangar = await startHangar((port) => ({
    HANGAR_PUBLIC_URL: `http://127.0.0.1:${port}`,
    HANGAR_OIDC_ISSUER_URL: provider.issuer,
    HANGAR_OIDC_CLIENT_ID: 'hangar',
    HANGAR_OIDC_CLIENT_SECRET: 'hangar-secret',
    HANGAR_OIDC_PROVIDER_NAME: 'Acme ID',
    HANGAR_OIDC_GROUP_MAPPING: 'eng=developers',
    HANGAR_PASSWORD_SIGN_IN: 'break-glass',
  }));
  chromium = await launchBrowser();
});

after(async () => {
  await chromium?.close();
  await hangar?.stop();
  await provider?.stop();
});

/// The provider's pages ask a CDN for their style sheet: nothing leaves the machine, the page
/// gets an empty one.
async function keepOnMachine(page) {
  await page.context().route((url) => !['127.0.0.1', 'localhost'].includes(url.hostname), (route) =>
    route.fulfill({ status: 200, contentType: 'text/css', body: '' }));
}

/// Signs `sub` in from the sign-in page: the button, then the provider's form.
async function throughProvider(page, sub) {
  await keepOnMachine(page);
  await page.goto(`${hangar.url}/login`);
  await waitHydrated(page);
  const button = await waitShown(page, '[data-testid="provider-sign-in"]');
  assert.equal(await button.innerText(), 'Sign in with Acme ID');
  await button.click();
  await page.waitForURL(`${provider.issuer}/**`);
  await page.fill('input[placeholder="sub"]', sub);
  await page.click('button:has-text("Authorize")');
}

test('people sign in through the provider, with its groups; refusals and sign-out say why', async () => {
  const admin = await watchedPage(chromium.browser);
  const erin = await watchedPage(chromium.browser);
  const uma = await watchedPage(chromium.browser);
  try {
    // The break-glass admin still signs in with a password, and makes the mapped group.
    await signIn(admin.page, hangar.url, 'admin', ADMIN_PASSWORD);
    await admin.page.waitForURL(`${hangar.url}/`);
    const developers = await api(admin.page, 'POST', '/api/v1/groups', { name: 'developers', max_spaces: 2 });
    assert.equal(developers.status, 201, JSON.stringify(developers.body));

    // Erin's first sign-in makes her account, in the group her claim maps to.
    await provider.set('erin-sub', {
      preferred_username: 'erin', name: 'Erin Example', email: 'erin@example.com', email_verified: true, groups: ['eng'],
    });
    await throughProvider(erin.page, 'erin-sub');
    await erin.page.waitForURL(`${hangar.url}/`);
    await waitHydrated(erin.page);
    assert.equal(await (await waitShown(erin.page, '[data-testid="signed-in-as"]')).innerText(), 'Erin Example');

    await admin.page.goto(`${hangar.url}/admin/groups`);
    await waitHydrated(admin.page);
    const member = await waitShown(admin.page, '[data-group="developers"] [data-member="erin"]');
    assert.equal(await member.getAttribute('data-source'), 'idp');
    assert.match(await member.innerText(), /from the identity provider/);
    await admin.page.screenshot({ path: join(RESULTS, 'oidc-groups.png'), fullPage: true });

    // Signing out says the provider's session remains.
    await erin.page.click('button:has-text("Sign out")');
    await erin.page.waitForURL(`${hangar.url}/login`);
    const notice = await waitShown(erin.page, '[data-testid="sign-in-notice"]');
    assert.match(await notice.innerText(), /Your session at Acme ID remains/);

    // With her group gone from the claim, her next sign-in takes the membership away.
    await provider.set('erin-sub', {
      preferred_username: 'erin', name: 'Erin Example', email: 'erin@example.com', email_verified: true, groups: [],
    });
    await throughProvider(erin.page, 'erin-sub');
    await erin.page.waitForURL(`${hangar.url}/`);
    await admin.page.goto(`${hangar.url}/admin/groups`);
    await waitHydrated(admin.page);
    await waitShown(admin.page, '[data-group="developers"]');
    assert.equal(await admin.page.locator('[data-group="developers"] [data-member="erin"]').count(), 0);

    // An unverified email is refused, and the sign-in page says what to do.
    await provider.set('uma-sub', { preferred_username: 'uma', email: 'uma@example.com', email_verified: false });
    await throughProvider(uma.page, 'uma-sub');
    await uma.page.waitForURL(`${hangar.url}/login`);
    await waitHydrated(uma.page);
    const refusal = await waitShown(uma.page, '[data-testid="sign-in-notice"]');
    assert.match(await refusal.innerText(), /Acme ID has not verified your email address uma@example\.com: verify it at Acme ID/);
    await uma.page.screenshot({ path: join(RESULTS, 'oidc-refused.png'), fullPage: true });

    // A password is only for the break-glass admin.
    assert.match(await uma.page.locator('[data-testid="break-glass-only"]').innerText(), /break-glass admin/);
    await uma.page.fill('input[name="username"]', 'erin');
    await uma.page.fill('input[name="password"]', 'any-password-at-all');
    await uma.page.click('button[type="submit"]');
    const error = await waitShown(uma.page, '[data-testid="login-error"]');
    assert.match(await error.innerText(), /password sign-in is turned off on this Hangar: use "Sign in with Acme ID"/);
  } catch (failure) {
    for (const [name, who] of Object.entries({ admin, erin, uma })) {
      await who.page.screenshot({ path: join(RESULTS, `oidc-failure-${name}.png`), fullPage: true }).catch(() => {});
      if (who.problems.length) console.error(`${name} saw:\n  ${who.problems.join('\n  ')}`);
    }
    throw failure;
  }
  for (const who of [admin, erin]) assert.deepEqual(who.problems, []);
  // Uma's refused password sign-in answers a server function's error (500 by Leptos's convention).
  assert.deepEqual(uma.problems.filter((p) => !p.includes('status of 500') && !p.includes('server error: 500')), []);
});
