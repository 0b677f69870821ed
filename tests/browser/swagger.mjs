// Drives headless Chromium against a live Roster and proves that Swagger UI (/docs) works for a real user:
// it loads with no request leaving the host, lists every operation of the served contract (and the Subscribers
// tag with its own), authorizes with BasicAuth, and runs "Try it out" on GET and POST /api/lists, on
// POST /api/subscribers and on POST /api/import/subscribers (a file upload) against the server itself.
//
// Environment:
//   ROSTER_BASE_URL        Roster to test, e.g. http://127.0.0.1:9000 (required)
//   ROSTER_ADMIN_PASSWORD  admin password (required)
//   ROSTER_ADMIN_USERNAME  admin user name (default admin)
//   ROSTER_TEST_OUTPUT     where screenshots go (default <repo>/test-output/browser)
//   CHROMIUM_PATH          Chromium executable (default /usr/bin/chromium)
//
// Run: node --test tests/browser/swagger.mjs   (scripts/browser-test.sh starts Roster and does this for you)

import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const baseUrl = requiredEnv('ROSTER_BASE_URL').replace(/\/+$/, '');
const password = requiredEnv('ROSTER_ADMIN_PASSWORD');
const username = process.env.ROSTER_ADMIN_USERNAME || 'admin';
const outputDir = path.resolve(process.env.ROSTER_TEST_OUTPUT || path.join(here, '..', '..', 'test-output', 'browser'));
const chromiumPath = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const rosterHost = new URL(baseUrl).host;
const basicAuth = 'Basic ' + Buffer.from(`${username}:${password}`).toString('base64');

// Every HTTP method an OpenAPI path item may carry an operation under.
const METHODS = ['get', 'put', 'post', 'delete', 'options', 'head', 'patch', 'trace'];

function requiredEnv(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} must be set`);
  return value;
}

describe(`Swagger UI at ${baseUrl}/docs`, { concurrency: false }, () => {
  let browser;
  let page;
  let spec;
  let step = 0;
  const requests = []; // every URL the browser asked for, with where we saw it: { url, method, headers, via }
  const problems = []; // page errors, console errors and failed loads

  // The live Try-it-out response of an operation block: status cell, body and the request URL it used.
  const liveResponse = (block) => ({
    status: block.locator('.live-responses-table tbody .response .response-col_status'),
    body: block.locator('.live-responses-table tbody .response .response-col_description .highlight-code'),
    requestUrl: block.locator('.request-url pre'),
  });

  // The operation block Swagger UI renders for `method path`.
  const operation = (method, apiPath) =>
    page.locator(`.opblock.opblock-${method}`).filter({
      has: page.locator(`.opblock-summary-path[data-path="${apiPath}"]`),
    });

  // A full-page screenshot, or one of just `element`, numbered in step order under steps/.
  async function screenshot(name, element) {
    step += 1;
    const file = path.join(outputDir, 'steps', `${String(step).padStart(2, '0')}-${name}.png`);
    if (element) await element.screenshot({ path: file });
    else await page.screenshot({ path: file, fullPage: true });
  }

  async function tryItOut(method, apiPath) {
    const block = operation(method, apiPath);
    await assert.doesNotReject(block.waitFor(), `no operation block for ${method.toUpperCase()} ${apiPath}`);
    await block.locator('.opblock-summary').first().click();
    await block.locator('button.try-out__btn', { hasText: 'Try it out' }).click();
    await block.locator('button.execute').waitFor();
    return block;
  }

  async function execute(block) {
    await block.locator('button.execute').click();
    const response = liveResponse(block);
    await response.status.waitFor();
    await response.body.waitFor();
    return response;
  }

  // Fails if the browser asked for anything on another host than Roster's (a CDN, a validator, fonts, ...).
  function assertNoRequestLeftTheHost() {
    const offHost = requests.filter((r) => {
      const url = new URL(r.url);
      if (['data:', 'blob:', 'about:'].includes(url.protocol)) return false; // never leave the browser
      return url.host !== rosterHost;
    });
    assert.deepEqual(
      offHost.map((r) => `${r.method} ${r.url} (${r.via})`),
      [],
      `requests to hosts other than ${rosterHost}`,
    );
  }

  before(async () => {
    mkdirSync(path.join(outputDir, 'steps'), { recursive: true });
    const specResponse = await fetch(`${baseUrl}/openapi.json`);
    assert.equal(specResponse.status, 200, 'GET /openapi.json');
    spec = await specResponse.json();

    // Playwright gives the browser a fresh, temporary profile (user data dir) of its own.
    browser = await chromium.launch({
      executablePath: chromiumPath,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
        '--no-first-run',
        '--disable-quic',
      ],
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    context.setDefaultTimeout(10_000);
    page = await context.newPage();

    // Playwright's own request events (page, frames, workers) ...
    page.on('request', (r) => requests.push({ url: r.url(), method: r.method(), headers: r.headers(), via: 'page' }));
    // ... and the DevTools network log, which also shows what Playwright leaves out (e.g. the favicon).
    const cdp = await context.newCDPSession(page);
    await cdp.send('Network.enable');
    cdp.on('Network.requestWillBeSent', ({ request }) =>
      requests.push({ url: request.url, method: request.method, headers: request.headers, via: 'devtools' }),
    );

    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('requestfailed', (r) => problems.push(`request failed: ${r.method()} ${r.url()}: ${r.failure()?.errorText}`));
    page.on('console', (message) => {
      if (message.type() !== 'error') return;
      const where = message.location()?.url || '';
      // Chromium asks every site for /favicon.ico by itself; Roster has none (404). The page does not
      // reference it, so it is not a Swagger UI asset.
      if (where === `${baseUrl}/favicon.ico`) return;
      problems.push(`console error: ${message.text()} (at ${where || 'unknown location'})`);
    });
  });

  after(async () => {
    // What the page looked like at the end, also when a step failed half-way.
    if (page) await screenshot('final').catch((error) => console.error(`final screenshot failed: ${error.message}`));
    await browser?.close();
  });

  it('loads /docs with Swagger UI and the served contract, without errors', async () => {
    const response = await page.goto(`${baseUrl}/docs`);
    assert.equal(response.status(), 200, 'GET /docs');
    await page.locator('.swagger-ui .information-container .title').waitFor();
    await page.locator('.opblock').first().waitFor();

    const title = await page.locator('.swagger-ui .information-container .title').innerText();
    assert.ok(title.includes(spec.info.title), `title "${title}" shows spec title "${spec.info.title}"`);
    assert.ok(title.includes(spec.info.version), `title "${title}" shows spec version "${spec.info.version}"`);
    // Swagger UI renders resolver / parser errors of the spec in an errors box.
    assert.equal(await page.locator('.swagger-ui .errors-wrapper').count(), 0, 'Swagger UI reports spec errors');
    await screenshot('docs-loaded');
    assert.deepEqual(problems, [], 'page errors, console errors or failed loads');
    assertNoRequestLeftTheHost();
  });

  it('lists every operation of /openapi.json', async () => {
    const expected = [];
    for (const [apiPath, item] of Object.entries(spec.paths)) {
      for (const method of METHODS) if (item[method]) expected.push(`${method.toUpperCase()} ${apiPath}`);
    }
    const rendered = await page.locator('.opblock .opblock-summary').evaluateAll((summaries) =>
      summaries.map((s) => {
        const method = s.querySelector('.opblock-summary-method')?.textContent.trim();
        const apiPath = s.querySelector('.opblock-summary-path')?.getAttribute('data-path');
        return `${method} ${apiPath}`;
      }),
    );
    assert.ok(expected.length > 0, 'the spec has operations');
    assert.deepEqual([...rendered].sort(), [...expected].sort(), 'rendered operations = spec operations');
  });

  it('lists the Subscribers tag with its operations', async () => {
    const tagged = (tag) => {
      const found = [];
      for (const [apiPath, item] of Object.entries(spec.paths)) {
        for (const method of METHODS) {
          if (item[method]?.tags?.includes(tag)) found.push(`${method.toUpperCase()} ${apiPath}`);
        }
      }
      return found;
    };
    const expected = tagged('Subscribers');
    assert.ok(expected.length >= 10, `the spec tags its subscriber operations Subscribers: ${expected.join(', ')}`);

    // Every tag of the spec has its section, in the spec's order (Lists, Subscribers, Health).
    const sections = await page.locator('.opblock-tag-section h3.opblock-tag').evaluateAll((headings) =>
      headings.map((h) => h.getAttribute('data-tag')),
    );
    assert.deepEqual(sections, spec.tags.map((tag) => tag.name), 'tag sections in the spec order');

    const section = page.locator('.opblock-tag-section').filter({
      has: page.locator('h3.opblock-tag[data-tag="Subscribers"]'),
    });
    await section.waitFor();
    const heading = await section.locator('h3.opblock-tag').innerText();
    const description = spec.tags.find((tag) => tag.name === 'Subscribers').description;
    assert.ok(heading.includes(description), `the Subscribers heading shows its description: "${heading}"`);
    const rendered = await section.locator('.opblock .opblock-summary').evaluateAll((summaries) =>
      summaries.map((s) => {
        const method = s.querySelector('.opblock-summary-method')?.textContent.trim();
        const apiPath = s.querySelector('.opblock-summary-path')?.getAttribute('data-path');
        return `${method} ${apiPath}`;
      }),
    );
    assert.deepEqual([...rendered].sort(), [...expected].sort(), 'operations under Subscribers = spec operations');
    // The public subscription form needs no credentials: Swagger UI shows no padlock on it.
    const publicForm = operation('post', '/api/public/subscription');
    assert.equal(await publicForm.locator('.authorization__btn').count(), 0, 'no padlock on the public form');
    assert.equal(await operation('post', '/api/subscribers').locator('.authorization__btn').count(), 1, 'padlock');
    await screenshot('subscribers-tag', section);
  });

  it('authorizes with BasicAuth', async () => {
    await page.locator('.auth-wrapper button.authorize').click();
    const dialog = page.locator('.modal-ux');
    await dialog.waitFor();
    const form = dialog.locator('.auth-container').filter({ has: page.locator('h4', { hasText: 'BasicAuth' }) });
    await form.locator('input[name="username"]').fill(username);
    await form.locator('input[name="password"]').fill(password);
    await screenshot('authorize-dialog');
    await form.locator('button.authorize', { hasText: 'Authorize' }).click();
    // Once authorized, the form offers Logout instead of Authorize.
    await form.locator('button', { hasText: 'Logout' }).waitFor();
    // Every scheme in the dialog has its own Close button; any of them closes the whole dialog.
    await form.locator('button.btn-done', { hasText: 'Close' }).click();
    await dialog.waitFor({ state: 'detached' });
    // The padlock on the Authorize button closes.
    await page.locator('.auth-wrapper button.authorize.locked').waitFor();
  });

  it('runs Try it out on GET /api/lists', async () => {
    const block = await tryItOut('get', '/api/lists');
    const response = await execute(block);
    await screenshot('get-lists-response');
    await screenshot('get-lists-operation', block);

    assert.equal((await response.status.innerText()).trim(), '200', 'rendered status of GET /api/lists');
    const body = await response.body.innerText();
    assert.match(body, /"status":\s*"success"/, `rendered body of GET /api/lists:\n${body}`);
    assert.ok((await response.requestUrl.innerText()).startsWith(`${baseUrl}/api/lists`), 'request URL is on Roster');

    const sent = requests.find((r) => r.via === 'page' && r.method === 'GET' && r.url.startsWith(`${baseUrl}/api/lists`));
    assert.ok(sent, 'the browser sent GET /api/lists');
    assert.equal(sent.headers.authorization, basicAuth, 'GET /api/lists carried the BasicAuth credentials');
  });

  it('runs Try it out on POST /api/lists and creates the list', async () => {
    const name = `Swagger UI browser test ${randomUUID()}`;
    const block = await tryItOut('post', '/api/lists');
    const contentType = block.locator('.opblock-section-request-body select');
    assert.equal(await contentType.inputValue(), 'application/json', 'request body media type');
    const editor = block.locator('textarea.body-param__text');
    const example = JSON.parse(await editor.inputValue());
    await editor.fill(JSON.stringify({ ...example, name, tags: ['browser-test'] }, null, 2));

    const response = await execute(block);
    // The whole page with both Try-it-out responses: the screenshot to look at.
    await page.screenshot({ path: path.join(outputDir, 'swagger.png'), fullPage: true });
    await screenshot('post-lists-operation', block);

    assert.equal((await response.status.innerText()).trim(), '200', 'rendered status of POST /api/lists');
    const body = await response.body.innerText();
    assert.match(body, /"status":\s*"success"/, `rendered body of POST /api/lists:\n${body}`);
    assert.ok(body.includes(name), `rendered body names the new list:\n${body}`);

    const check = await fetch(`${baseUrl}/api/lists?query=${encodeURIComponent(name)}`, {
      headers: { authorization: basicAuth },
    });
    assert.equal(check.status, 200, 'GET /api/lists?query=<name>');
    const found = (await check.json()).data;
    assert.equal(found.total, 1, `exactly one list named "${name}"`);
    assert.equal(found.results[0].name, name);
    assert.deepEqual(found.results[0].tags, ['browser-test']);
  });

  it('runs Try it out on POST /api/subscribers and creates the subscriber', async () => {
    // A list to subscribe to, made directly (the example's `lists: [1]` need not exist on this database).
    const listName = `Swagger UI subscribers ${randomUUID()}`;
    const made = await fetch(`${baseUrl}/api/lists`, {
      method: 'POST',
      headers: { authorization: basicAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: listName, tags: ['browser-test'] }),
    });
    assert.equal(made.status, 200, 'POST /api/lists (set-up)');
    const list = (await made.json()).data;
    assert.equal(list.subscriber_count, 0, 'the new list has no subscribers');

    const email = `swagger-ui-${randomUUID()}@example.com`;
    const block = await tryItOut('post', '/api/subscribers');
    const contentType = block.locator('.opblock-section-request-body select');
    assert.equal(await contentType.inputValue(), 'application/json', 'request body media type');
    const editor = block.locator('textarea.body-param__text');
    const example = JSON.parse(await editor.inputValue());
    assert.equal(typeof example.email, 'string', `the editor starts from the spec's example: ${JSON.stringify(example)}`);
    await editor.fill(JSON.stringify({ ...example, email, lists: [list.id] }, null, 2));

    const response = await execute(block);
    await screenshot('post-subscribers-operation', block);
    await page.screenshot({ path: path.join(outputDir, 'swagger-subscribers.png'), fullPage: true });

    assert.equal((await response.status.innerText()).trim(), '200', 'rendered status of POST /api/subscribers');
    const body = await response.body.innerText();
    assert.match(body, /"status":\s*"success"/, `rendered body of POST /api/subscribers:\n${body}`);
    assert.ok(body.includes(email), `rendered body names the new subscriber:\n${body}`);
    assert.ok((await response.requestUrl.innerText()).startsWith(`${baseUrl}/api/subscribers`), 'request URL');

    const sent = requests.find((r) => r.via === 'page' && r.method === 'POST' && r.url === `${baseUrl}/api/subscribers`);
    assert.ok(sent, 'the browser sent POST /api/subscribers');
    assert.equal(sent.headers.authorization, basicAuth, 'POST /api/subscribers carried the BasicAuth credentials');

    // The subscriber exists, on the list, and the list counts it.
    const found = await fetch(`${baseUrl}/api/subscribers?list_id=${list.id}&per_page=all`, {
      headers: { authorization: basicAuth },
    });
    assert.equal(found.status, 200, 'GET /api/subscribers?list_id=<id>');
    const listed = (await found.json()).data;
    assert.equal(listed.total, 1, 'the list has one subscriber');
    assert.equal(listed.results[0].email, email);
    assert.deepEqual(listed.results[0].attribs, example.attribs ?? {}, "the example's attribs were stored");
    const counted = await fetch(`${baseUrl}/api/lists/${list.id}`, { headers: { authorization: basicAuth } });
    const counts = (await counted.json()).data;
    assert.deepEqual(
      [counts.subscriber_count, counts.subscriber_statuses],
      [1, { [example.preconfirm_subscriptions ? 'confirmed' : 'unconfirmed']: 1 }],
      "the list's counts",
    );
  });

  it('uploads a CSV file with Try it out on POST /api/import/subscribers and the import runs', async () => {
    const made = await fetch(`${baseUrl}/api/lists`, {
      method: 'POST',
      headers: { authorization: basicAuth, 'content-type': 'application/json' },
      body: JSON.stringify({ name: `Swagger UI import ${randomUUID()}`, tags: ['browser-test'] }),
    });
    assert.equal(made.status, 200, 'POST /api/lists (set-up)');
    const list = (await made.json()).data;
    const email = `swagger-import-${randomUUID()}@example.com`;

    const block = await tryItOut('post', '/api/import/subscribers');
    const row = (name) => block.locator('.opblock-section-request-body tr').filter({
      has: page.locator('.parameter__name', { hasText: name }),
    });
    const params = row('params').locator('input[type="text"], textarea').first();
    await params.fill(JSON.stringify({ mode: 'subscribe', subscription_status: 'confirmed', lists: [list.id] }));
    await row('file').locator('input[type="file"]').setInputFiles({
      name: 'swagger.csv',
      mimeType: 'text/csv',
      buffer: Buffer.from(`email,name\n${email},Swagger Import\n`),
    });
    const response = await execute(block);
    await screenshot('post-import-operation', block);
    await page.screenshot({ path: path.join(outputDir, 'swagger-import.png'), fullPage: true });
    const body = await response.body.innerText();
    assert.equal((await response.status.innerText()).trim(), '200', `rendered status of POST /api/import/subscribers: ${body}`);
    assert.match(body, /"name":\s*"swagger.csv"/, `rendered body names the uploaded file:\n${body}`);

    const sent = requests.find((r) => r.via === 'page' && r.method === 'POST' && r.url === `${baseUrl}/api/import/subscribers`);
    assert.ok(sent, 'the browser sent POST /api/import/subscribers');
    assert.match(sent.headers['content-type'] ?? '', /^multipart\/form-data; boundary=/, 'sent as multipart');

    // The job ends, and the subscriber is on the list.
    let job;
    for (let i = 0; i < 100; i++) {
      const status = await fetch(`${baseUrl}/api/import/subscribers`, { headers: { authorization: basicAuth } });
      job = (await status.json()).data;
      if (job.status === 'finished' || job.status === 'failed') break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    assert.deepEqual([job.status, job.imported], ['finished', 1], `the import job: ${JSON.stringify(job)}`);
    const found = await fetch(`${baseUrl}/api/subscribers?list_id=${list.id}&per_page=all`, {
      headers: { authorization: basicAuth },
    });
    const listed = (await found.json()).data;
    assert.deepEqual(listed.results.map((s) => [s.email, s.name]), [[email, 'Swagger Import']], 'imported');
    const cleared = await fetch(`${baseUrl}/api/import/subscribers`, { method: 'DELETE', headers: { authorization: basicAuth } });
    assert.equal((await cleared.json()).data.status, 'none', 'the ended job is cleared');
  });

  it('made no request that left the host, and had no errors', () => {
    assertNoRequestLeftTheHost();
    assert.deepEqual(problems, [], 'page errors, console errors or failed loads');
  });
});
