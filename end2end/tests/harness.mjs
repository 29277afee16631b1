// Starts a real Hangar (the built debug binary, a fresh SQLite file) and a headless Chromium.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, mkdirSync, readFileSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const RESULTS = join(ROOT, 'end2end', 'test-results');
export const ADMIN_PASSWORD = 'e2e-admin-password';

function freePort() {
  return new Promise((done, fail) => {
    const probe = createServer();
    probe.once('error', fail);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => done(port));
    });
  });
}

// What a test's Hangar left on the host from its data dir (a failed test leaves spaces): the
// containers and volumes of its installation (named by the folders under volumes/) and the
// loop devices of its disk images. Only its own: nothing outside `dataDir` is touched.
function releaseHostObjects(dataDir) {
  if (!existsSync(dataDir)) return;
  const real = realpathSync(dataDir);
  const quiet = (cmd, args) => {
    try { return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }); } catch { return ''; }
  };
  const volumes = join(real, 'volumes');
  for (const installation of existsSync(volumes) ? readdirSync(volumes) : []) {
    const label = `label=io.hangar.installation=${installation}`;
    for (const id of quiet('docker', ['ps', '-aq', '--filter', label]).split(/\s+/).filter(Boolean)) quiet('docker', ['rm', '-f', id]);
    for (const name of quiet('docker', ['volume', 'ls', '-q', '--filter', label]).split(/\s+/).filter(Boolean)) quiet('docker', ['volume', 'rm', '-f', name]);
  }
  for (const device of readdirSync('/sys/block').filter((d) => d.startsWith('loop'))) {
    let backing = '';
    try { backing = readFileSync(`/sys/block/${device}/loop/backing_file`, 'utf8'); } catch { continue; }
    if (backing.startsWith(`${real}/`)) quiet('losetup', ['--detach', `/dev/${device}`]);
  }
}

/// `extraEnv` may be a function of the port Hangar will listen on (for HANGAR_PUBLIC_URL).
export async function startHangar(extraEnv = {}) {
  const port = await freePort();
  if (typeof extraEnv === 'function') extraEnv = extraEnv(port);
  const dir = mkdtempSync(join(tmpdir(), 'hangar-e2e-'));
  const binary = process.env.HANGAR_BIN ?? join(ROOT, 'target', 'debug', 'hangar');
  const child = spawn(binary, ['serve'], {
    cwd: ROOT,
    env: {
      ...process.env,
      HANGAR_LISTEN: `127.0.0.1:${port}`,
      HANGAR_DATABASE_URL: `sqlite://${join(dir, 'hangar.db')}`,
      HANGAR_ADMIN_PASSWORD: ADMIN_PASSWORD,
      LEPTOS_SITE_ROOT: join(ROOT, 'target', 'site'),
      HANGAR_LOG: 'warn',
      // A port of its own: tests run beside other Hangars.
      HANGAR_SSH_LISTEN: '127.0.0.1:0',
      ...extraEnv,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.on('data', (chunk) => { output += chunk; });
  child.stderr.on('data', (chunk) => { output += chunk; });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`hangar exited early:\n${output}`);
    try {
      const response = await fetch(`${url}/healthz`);
      if (response.ok) break;
    } catch { /* not listening yet */ }
    if (Date.now() > deadline) throw new Error(`hangar did not come up within 30 s:\n${output}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    port,
    output: () => output,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r() : child.once('exit', r)));
      releaseHostObjects(join(dir, 'hangar-data'));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export async function launchBrowser() {
  mkdirSync(RESULTS, { recursive: true });
  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    // Playwright gives every launch a fresh temporary profile of its own.
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
  return {
    browser,
    async close() {
      await browser.close();
    },
  };
}

/// A page that records console errors and failed requests, for asserting there were none.
export async function watchedPage(browser, contextOptions = {}) {
  const context = await browser.newContext(contextOptions);
  const page = await context.newPage();
  const problems = [];
  await recordPageLog(page);
  page.on('console', (message) => {
    // A refused action answers 4xx on purpose (its message is shown on the page); Chromium
    // logs every such answer. Server errors are caught below, from the responses themselves.
    if (/Failed to load resource: the server responded with a status of (4\d\d|5\d\d)/.test(message.text())) return;
    if (message.text() === 'Failed to load resource: net::ERR_NETWORK_CHANGED') return;
    if (message.type() === 'error') problems.push(`console: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('response', (response) => {
    if (response.status() >= 500) problems.push(`server error: ${response.status()} ${response.url()}`);
  });
  page.on('requestfailed', (request) => {
    // A navigation cancels the requests of the page it leaves: not a fault. Nor is
    // ERR_NETWORK_CHANGED: Chromium runs on the machine whose Docker engine adds and removes
    // containers' network interfaces, and drops requests in flight when it sees that.
    if (['net::ERR_ABORTED', 'net::ERR_NETWORK_CHANGED'].includes(request.failure()?.errorText)) return;
    problems.push(`request failed: ${request.url()} (${request.failure()?.errorText})`);
  });
  return { page, problems };
}

/// The last messages of each watched page (console, page errors, the site's files and API
/// answers as they arrive, failed requests), for `waitHydrated` to tell why a page never hydrated.
const pageLogs = new WeakMap();

async function recordPageLog(page) {
  const log = [];
  const remember = (line) => {
    log.push(`${Math.round(performance.now())} ms ${line}`);
    if (log.length > 100) log.shift();
  };
  pageLogs.set(page, log);
  // The live stream's life (opened, events, errors) into the console, hence into the log.
  await page.addInitScript(() => {
    const Native = window.EventSource;
    window.EventSource = class extends Native {
      constructor(...args) {
        super(...args);
        const say = (what) => console.debug(`EventSource ${args[0]}: ${what} (readyState ${this.readyState})`);
        say('created');
        this.addEventListener('open', () => say('open'));
        this.addEventListener('error', () => say('error'));
        for (const name of ['space', 'quota', 'resync']) this.addEventListener(name, () => say(`event ${name}`));
      }
    };
  });
  page.on('console', (message) => remember(`console ${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => remember(`page error: ${error.message}`));
  page.on('framenavigated', (frame) => { if (frame === page.mainFrame()) remember(`navigated to ${frame.url()}`); });
  page.on('response', (response) => {
    if (/\/(pkg|api)\//.test(response.url())) remember(`${response.status()} ${response.request().method()} ${response.url()}`);
  });
  page.on('requestfailed', (request) => remember(`failed: ${request.url()} (${request.failure()?.errorText})`));
}

/// The page's last messages (see `recordPageLog`), one per line.
export function pageLog(page) {
  return (pageLogs.get(page) ?? ['(nothing recorded: not a watchedPage)']).join('\n');
}

/// Waits until the page has hydrated (the wasm took over the whole page, a page loaded on
/// demand included); if it does not, the error carries the page's last messages.
export async function waitHydrated(page, timeout = 30_000) {
  try {
    await page.waitForSelector('body[data-hydrated="true"]', { timeout });
  } catch (error) {
    throw new Error(`${page.url()} did not hydrate within ${timeout} ms; its last messages:\n${pageLog(page)}`, { cause: error });
  }
}

/// Waits for `selector`; if it does not come, the error carries the page's last messages.
export async function waitShown(page, selector, timeout = 30_000) {
  try {
    return await page.waitForSelector(selector, { timeout });
  } catch (error) {
    throw new Error(`${selector} did not show on ${page.url()} within ${timeout} ms; its last messages:\n${pageLog(page)}`, { cause: error });
  }
}

export async function signIn(page, url, username, password) {
  await page.goto(`${url}/login`);
  await waitHydrated(page);
  await page.fill('input[name="username"]', username);
  await page.fill('input[name="password"]', password);
  await page.click('button[type="submit"]');
}

/// Signs in and waits for the dashboard, hydrated.
export async function signInToDashboard(page, url, username, password) {
  await signIn(page, url, username, password);
  await page.waitForURL(`${url}/`);
  await waitHydrated(page);
}

/// Calls the JSON API from the page, with its session cookie (and Origin, as browsers do).
export async function api(page, method, path, body) {
  return page.evaluate(async ({ method, path, body }) => {
    const response = await fetch(path, {
      method,
      headers: body ? { 'content-type': 'application/json' } : {},
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await response.text();
    return { status: response.status, body: text ? JSON.parse(text) : null };
  }, { method, path, body });
}

/// Records when the page marks itself hydrated (`<body data-hydrated="true">`), for
/// `loadTiming`. Call on a context before its pages navigate.
export async function recordHydration(context) {
  await context.addInitScript(() => {
    const mark = () => {
      if (!window.__hydratedAt && document.body?.dataset.hydrated === 'true') {
        window.__hydratedAt = performance.now();
      }
    };
    new MutationObserver(mark).observe(document, {
      attributes: true, subtree: true, attributeFilter: ['data-hydrated'],
    });
  });
}

/// The page's load as Chromium timed it, in ms from the start of the navigation: navigation
/// timing, the wasm's download (bytes on the wire, encoding) and when hydration was done.
/// For printing (build and size work), not for asserting.
export async function loadTiming(page) {
  await waitHydrated(page);
  return page.evaluate(() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const wasm = performance.getEntriesByType('resource').find((r) => r.name.endsWith('.wasm'));
    const js = performance.getEntriesByType('resource').find((r) => /\/pkg\/[^/]+\.js$/.test(r.name));
    const ms = (v) => Math.round(v);
    return {
      ttfb: ms(nav.responseStart),
      domInteractive: ms(nav.domInteractive),
      domContentLoaded: ms(nav.domContentLoadedEventEnd),
      loadEventEnd: ms(nav.loadEventEnd),
      jsKB: js && Math.round(js.transferSize / 1000),
      wasmResponseEnd: wasm && ms(wasm.responseEnd),
      wasmKB: wasm && Math.round(wasm.transferSize / 1000),
      wasmDecodedKB: wasm && Math.round(wasm.decodedBodySize / 1000),
      hydrated: ms(window.__hydratedAt ?? NaN),
    };
  });
}
