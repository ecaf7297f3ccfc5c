/**
 * Drive the page `ganzoo web` wrote in headless Chromium (playwright-core, the system's browser),
 * for tests/test_web_page.py. Reads a JSON request on stdin, prints the canvas pixels as JSON.
 *
 *   {"url", "screenshot", "chromium"?, "generate": {"n", "seed", "label"?}}      -> canvas #grid
 *   {"url", "screenshot", "chromium"?, "translate": {"file"}}                    -> canvas #result
 *   -> {"width", "height", "rgba": base64, "status": text, "title": text, "classes": [options]}
 */
import { chromium } from 'playwright-core';

const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const request = JSON.parse(Buffer.concat(chunks).toString());

const browser = await chromium.launch({
  executablePath: request.chromium ?? '/usr/bin/chromium',
  // Root in a container has no sandbox; nothing may reach the network beyond the local page.
  args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
         '--disable-component-update', '--disable-sync'],
});
try {
  const page = await browser.newPage();
  const messages = [];
  page.on('console', (message) => messages.push(`${message.type()}: ${message.text()}`));
  page.on('pageerror', (error) => messages.push(`pageerror: ${error.message}`));
  await page.goto(request.url);
  await page.waitForFunction(() => ['ready', 'error'].includes(document.body.dataset.status), null, { timeout: 60000 });
  const loaded = await page.evaluate(() => `${document.body.dataset.status}: ${document.getElementById('status').textContent}`);
  if (!loaded.startsWith('ready')) throw new Error(`the page did not load the model (${loaded}); console: ${messages.join(' | ')}`);
  let canvas = '#grid';
  if (request.generate) {
    await page.fill('#count', String(request.generate.n));
    await page.fill('#seed', String(request.generate.seed));
    if (request.generate.label !== undefined) await page.selectOption('#class', request.generate.label);
    await page.click('#run-generate');
  } else {
    canvas = '#result';
    await page.setInputFiles('#file', request.translate.file);
  }
  await page.waitForFunction(() => ['done', 'error'].includes(document.body.dataset.status), null, { timeout: 60000 });
  await page.screenshot({ path: request.screenshot, fullPage: true });
  const result = await page.evaluate((selector) => {
    const element = document.querySelector(selector);
    const pixels = element.getContext('2d').getImageData(0, 0, element.width, element.height).data;
    let binary = '';
    for (let i = 0; i < pixels.length; i += 8192) binary += String.fromCharCode(...pixels.subarray(i, i + 8192));
    return {
      width: element.width,
      height: element.height,
      rgba: btoa(binary),
      status: document.body.dataset.status + ': ' + document.getElementById('status').textContent,
      title: document.getElementById('title').textContent,
      classes: Array.from(document.querySelectorAll('#class option'), (option) => option.value),
    };
  }, canvas);
  console.log(JSON.stringify({ ...result, messages }));
} finally {
  await browser.close();
}
