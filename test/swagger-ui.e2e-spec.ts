import { INestApplication } from '@nestjs/common';
import { existsSync, promises as fs } from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { type BrowserContext, chromium, type Page } from 'playwright-core';
import { HTTP_ADAPTER, ROOT, startApp } from './support/app';

/** Debian's Chromium; CI installs it (.ci/run). Nothing downloads a browser of its own. */
const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = path.join(ROOT, 'test', 'artifacts');
// The flags this machine needs: without the networking ones Chromium keeps calling hosts it cannot reach.
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const haveBrowser = existsSync(CHROMIUM);
if (!haveBrowser && !process.env.CI) {
  console.warn(
    `Swagger UI browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium); under CI=true it fails instead`,
  );
}
const describeInBrowser = haveBrowser || process.env.CI ? describe : describe.skip;

describeInBrowser('Swagger UI and ReDoc in headless Chromium', () => {
  let app: INestApplication;
  let baseUrl: string;
  let profile: string;
  let context: BrowserContext;
  let page: Page;
  /**
   * Every URL the pages sent a request to (the page's policy may block some before they leave): all must be the
   * service's own.
   */
  const requested: string[] = [];
  const blocked: string[] = [];
  const failedStatuses: string[] = [];

  beforeAll(async () => {
    if (!haveBrowser) throw new Error(`${CHROMIUM} is missing: CI must install Debian's chromium (.ci/run does)`);
    app = await startApp();
    await app.listen(0, '127.0.0.1');
    baseUrl = await app.getUrl();
    profile = await fs.mkdtemp(path.join(os.tmpdir(), 'chromium-profile-'));
    context = await chromium.launchPersistentContext(profile, {
      executablePath: CHROMIUM,
      headless: true,
      args: ARGS,
      viewport: { width: 1280, height: 900 },
    });
    context.on('request', (r) => requested.push(r.url()));
    context.on('requestfailed', (r) => {
      // Chromium reports a request its page's policy refused as failed with 'csp': it never left.
      if (r.failure()?.errorText === 'csp') blocked.push(r.url());
    });
    context.on('response', (r) => {
      if (r.status() >= 400) failedStatuses.push(`${r.status()} ${r.url()}`);
    });
    page = await context.newPage();
    await fs.mkdir(ARTIFACTS, { recursive: true });
  });
  afterAll(async () => {
    await context?.close();
    await app?.close();
    if (profile) await fs.rm(profile, { recursive: true, force: true });
  });

  it('lists the routes at /docs, generic and typed', async () => {
    await page.goto(`${baseUrl}/docs`);
    await page.locator('.opblock-summary-path').first().waitFor();
    const paths = await page
      .locator('.opblock-summary-path')
      .evaluateAll((nodes) => nodes.map((n) => n.getAttribute('data-path')));
    expect(paths).toEqual(
      expect.arrayContaining([
        '/v1/models/iris/predict',
        '/v1/models/iris/predict/batch',
        '/v1/models/digits/predict',
        '/v1/models/{model}/predict',
        '/v1/models/{model}/predict/batch',
        '/v2/models/{model}/infer',
        '/health/ready',
        '/predict',
      ]),
    );
    await expect(page.locator('.info .title').textContent()).resolves.toContain('ONNX inference service');
  });

  it('runs "Try it out" on the iris example and shows a 200 with a label', async () => {
    const operation = page.locator('.opblock', {
      has: page.locator('.opblock-summary-path[data-path="/v1/models/iris/predict"]'),
    });
    await operation.locator('.opblock-summary').click();
    await operation.locator('button.try-out__btn').click();
    await expect(operation.locator('textarea.body-param__text').inputValue()).resolves.toContain('sepal_length');
    await operation.locator('button.execute').click();
    const response = operation.locator('.live-responses-table .response');
    await response.locator('.response-col_status').filter({ hasText: '200' }).waitFor();
    const body = await response.locator('.response-col_description pre').first().textContent();
    expect(JSON.parse(body ?? '')).toMatchObject({ model: 'iris', label: 'setosa', prediction: 0 });
    await response.scrollIntoViewIfNeeded();
    await operation.screenshot({ path: path.join(ARTIFACTS, `swagger-ui-try-it-out-${HTTP_ADAPTER}.png`) });
  });

  it('renders ReDoc at /redoc from the same document', async () => {
    await page.goto(`${baseUrl}/redoc`);
    await page.locator('h2', { hasText: 'Predict one iris instance (typed)' }).waitFor();
    await expect(page.locator('h1').first().textContent()).resolves.toContain('ONNX inference service');
    await page.screenshot({ path: path.join(ARTIFACTS, `redoc-${HTTP_ADAPTER}.png`) });
  });

  it('fetched nothing from anywhere but the service, and nothing it asked for was missing', () => {
    const foreign = requested.filter(
      (url) =>
        !url.startsWith(baseUrl) && !url.startsWith('data:') && !url.startsWith('blob:') && !blocked.includes(url),
    );
    expect(requested.length).toBeGreaterThan(3);
    expect(foreign).toEqual([]);
    // ReDoc's footer logo, from its makers' CDN, is stopped by the page's Content-Security-Policy.
    expect(blocked.every((url) => url.endsWith('/logo-mini.svg'))).toBe(true);
    expect(failedStatuses).toEqual([]);
  });
});
