// First load of the sign-in page and of the dashboard with an empty browser cache: printed,
// not asserted (figures for build and wasm size work). HANGAR_BIN picks the server binary;
// LOAD_TIMING_MBIT=10 emulates a 10 Mbit/s link with 20 ms latency (loopback is too fast to
// show what the bytes cost).
import { after, before, test } from 'node:test';
import {
  ADMIN_PASSWORD, launchBrowser, loadTiming, recordHydration, signIn, startHangar,
} from './harness.mjs';

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

async function coldLoad(path, storageState) {
  // A new context has an empty cache: the wasm is downloaded, compiled and run afresh.
  const context = await chromium.browser.newContext(storageState ? { storageState } : {});
  await recordHydration(context);
  const page = await context.newPage();
  const mbit = Number(process.env.LOAD_TIMING_MBIT ?? 0);
  if (mbit > 0) {
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    await cdp.send('Network.emulateNetworkConditions', {
      offline: false, latency: 20,
      downloadThroughput: (mbit * 1e6) / 8, uploadThroughput: (mbit * 1e6) / 8,
    });
  }
  let encoding = 'none';
  page.on('response', (response) => {
    if (response.url().endsWith('.wasm')) encoding = response.headers()['content-encoding'] ?? 'none';
  });
  await page.goto(`${hangar.url}${path}`);
  const timing = { ...(await loadTiming(page)), wasmEncoding: encoding };
  await context.close();
  return timing;
}

test('first load timings (printed)', async () => {
  const login = await coldLoad('/login');
  const link = process.env.LOAD_TIMING_MBIT ? `, ${process.env.LOAD_TIMING_MBIT} Mbit/s` : '';
  console.log(`load timing /login (ms, cold cache${link}): ${JSON.stringify(login)}`);

  const context = await chromium.browser.newContext();
  const page = await context.newPage();
  await signIn(page, hangar.url, 'admin', ADMIN_PASSWORD);
  await page.waitForURL(`${hangar.url}/`);
  const storageState = await context.storageState();
  await context.close();

  for (let i = 0; i < 3; i++) {
    const dashboard = await coldLoad('/', storageState);
    console.log(`load timing / dashboard #${i + 1} (ms, cold cache${link}): ${JSON.stringify(dashboard)}`);
  }
});
