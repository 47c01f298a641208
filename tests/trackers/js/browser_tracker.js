// Opens the test page in Debian's headless Chromium (driven by playwright-core), lets the
// browser tracker send a page view, then a structured event, and prints one JSON line: the
// tracker's answers, the collector's cookies as the browser keeps them, and what went over the
// network to the collector (preflights included), read from the DevTools protocol.
// Run by tests/trackers/test_browser_tracker.py with playwright-core on NODE_PATH.
//
//   node browser_tracker.js <chromium> <page url> <collector origin> <fresh user data dir> <cookies>
//
// <cookies> is "default" (Chromium's own setting, which here blocks third-party cookies) or
// "allow-third-party" (the profile setting "Allow third-party cookies" is on).
'use strict';

const fs = require('fs');
const path = require('path');
const { chromium } = require('playwright-core');

const ANSWER_TIMEOUT_MS = 20000;
// Nothing but loopback: no background services, and every host name other than localhost
// and 127.0.0.* fails to resolve, so the browser cannot reach out even by mistake.
const FLAGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.*',
];

async function main([chromiumPath, pageUrl, collectorOrigin, userDataDir, cookies]) {
  if (cookies === 'allow-third-party') allowThirdPartyCookies(userDataDir);
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: chromiumPath,
    headless: true,
    args: FLAGS,
  });
  try {
    const page = context.pages()[0] || (await context.newPage());
    const exchanges = await recordExchanges(context, page, collectorOrigin);

    // The page view is tracked on load; the structured event after its answer came back,
    // so that the second request can carry the cookie set by the first answer.
    await page.goto(pageUrl);
    await waitForAnswers(page, 1);
    await page.evaluate(() =>
      snowplowBrowserTracking.trackStructEvent({ category: 'checkout', action: 'pay' }),
    );
    await waitForAnswers(page, 2);

    const output = {
      answers: await page.evaluate(() => window.trackerAnswers),
      cookies: await context.cookies([collectorOrigin]),
      exchanges: Object.values(exchanges).filter((e) => e.url !== undefined),
      userAgent: await page.evaluate(() => navigator.userAgent),
    };
    process.stdout.write(JSON.stringify(output) + '\n');
  } finally {
    await context.close();
  }
}

// The profile preference behind "Allow third-party cookies" in the browser's settings.
function allowThirdPartyCookies(userDataDir) {
  const profile = path.join(userDataDir, 'Default');
  fs.mkdirSync(profile, { recursive: true });
  const preferences = { profile: { cookie_controls_mode: 0, block_third_party_cookies: false } };
  fs.writeFileSync(path.join(profile, 'Preferences'), JSON.stringify(preferences));
}

async function waitForAnswers(page, count) {
  await page.waitForFunction((n) => window.trackerAnswers.length >= n, count, {
    timeout: ANSWER_TIMEOUT_MS,
  });
}

// Requests to the collector by DevTools request id, with the headers that really went over
// the wire (the ExtraInfo events carry Cookie and Set-Cookie, and cookies the browser blocked).
async function recordExchanges(context, page, collectorOrigin) {
  const exchanges = {};
  const exchange = (id) => (exchanges[id] = exchanges[id] || { id });
  const cdp = await context.newCDPSession(page);
  cdp.on('Network.requestWillBeSent', ({ requestId, request, type }) => {
    if (!request.url.startsWith(collectorOrigin)) return;
    Object.assign(exchange(requestId), { url: request.url, method: request.method, type });
  });
  cdp.on('Network.requestWillBeSentExtraInfo', ({ requestId, headers, associatedCookies }) => {
    const blocked = associatedCookies.filter((c) => c.blockedReasons.length > 0);
    Object.assign(exchange(requestId), { requestHeaders: headers, blockedRequestCookies: blocked });
  });
  cdp.on('Network.responseReceived', ({ requestId, response }) => {
    Object.assign(exchange(requestId), { status: response.status });
  });
  cdp.on('Network.responseReceivedExtraInfo', ({ requestId, headers, blockedCookies }) => {
    Object.assign(exchange(requestId), { responseHeaders: headers, blockedResponseCookies: blockedCookies });
  });
  await cdp.send('Network.enable');
  return exchanges;
}

main(process.argv.slice(2)).catch((error) => {
  console.error(error);
  process.exit(1);
});
