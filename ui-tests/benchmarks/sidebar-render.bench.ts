import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';

/**
 * How long the ModelHub sidebar takes to render 1,000 models (each with its latest version,
 * its number of versions and its stage badges), measured in the browser with
 * performance.now(). The model list is fed by a mocked `GET /modelhub/api/models`.
 *
 * Two figures, medians of REPEATS:
 * - render: from clearing a filter that hid every model to 1,000 rows laid out (React render,
 *   DOM, style and layout; no network);
 * - refresh: from a click on Refresh to 1,000 rows laid out, starting from an empty list
 *   (the request through JupyterLab's ServerConnection, answered from memory by a patched
 *   window.fetch; JSON parsing; render).
 *
 * Writes the figures as JSON to $MODELHUB_BENCH_OUTPUT when set.
 */

const MODELS = 1000;
const REPEATS = 15;

function models(count: number): unknown[] {
  return Array.from({ length: count }, (_, i) => {
    const versions = 1 + (i % 12);
    return {
      name: `model-${String(i).padStart(4, '0')}`,
      latest: `v0.${Math.floor(versions / 10)}.${versions % 10}`,
      versions,
      stages:
        i % 3 === 0
          ? { prod: 'v0.0.1', staging: `v0.0.${versions % 10}` }
          : i % 3 === 1
            ? { dev: 'v0.0.1' }
            : {},
      updated: '2026-11-22T05:00:00+00:00',
      deprecated: i % 50 === 0
    };
  });
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}

test.use({ autoGoto: false });

test('render 1,000 models in the sidebar', async ({ page }) => {
  test.setTimeout(180_000);
  const full = JSON.stringify({ models: models(MODELS) });
  await page.route(/\/modelhub\/api\/models(\?.*)?$/, route =>
    route.fulfill({ status: 200, contentType: 'application/json', body: full })
  );
  await page.route(/\/modelhub\/api\/deployments(\?.*)?$/, route =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({ deployments: [] })
    })
  );

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await expect(panel.locator('.jp-ModelHub-modelRow')).toHaveCount(MODELS);

  // In the page: change the filter (as typing does), and time until every row is laid out.
  const renderTimes: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const ms = await page.evaluate(async count => {
      const root = document.getElementById('jupyter-modelhub-panel')!;
      const input = root.querySelector<HTMLInputElement>(
        '.jp-ModelHub-filter'
      )!;
      const setValue = Object.getOwnPropertyDescriptor(
        HTMLInputElement.prototype,
        'value'
      )!.set!;
      const type = (text: string) => {
        setValue.call(input, text);
        input.dispatchEvent(new Event('input', { bubbles: true }));
      };
      const rows = () => root.querySelectorAll('.jp-ModelHub-modelRow').length;
      const until = (done: () => boolean) =>
        new Promise<void>(resolve => {
          const check = () =>
            done() ? resolve() : requestAnimationFrame(check);
          check();
        });
      type('no model has this name');
      await until(() => rows() === 0);
      const start = performance.now();
      type('');
      await until(() => rows() === count);
      root.getBoundingClientRect(); // forces style and layout
      void document.body.offsetHeight;
      return performance.now() - start;
    }, MODELS);
    renderTimes.push(ms);
  }

  // From an empty list, time a refresh that brings 1,000 models. The page's own fetch
  // answers GET models from memory, so that the figure holds no test-harness round trip.
  await page.evaluate(body => {
    const original = window.fetch.bind(window);
    const state = window as unknown as { modelhubBenchEmpty: boolean };
    state.modelhubBenchEmpty = true;
    window.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
      const url = input instanceof Request ? input.url : String(input);
      const method = input instanceof Request ? input.method : init?.method;
      if (
        /\/modelhub\/api\/models(\?.*)?$/.test(url) &&
        (method ?? 'GET') === 'GET'
      ) {
        const text = state.modelhubBenchEmpty ? '{"models": []}' : body;
        return Promise.resolve(
          new Response(text, {
            status: 200,
            headers: { 'Content-Type': 'application/json' }
          })
        );
      }
      return original(input, init);
    };
  }, full);
  const refreshTimes: number[] = [];
  for (let i = 0; i < REPEATS; i++) {
    const ms = await page.evaluate(async count => {
      const state = window as unknown as { modelhubBenchEmpty: boolean };
      const root = document.getElementById('jupyter-modelhub-panel')!;
      const button = root.querySelector<HTMLButtonElement>(
        '.jp-ModelHub-refreshButton'
      )!;
      const rows = () => root.querySelectorAll('.jp-ModelHub-modelRow').length;
      const until = (done: () => boolean) =>
        new Promise<void>(resolve => {
          const check = () =>
            done() ? resolve() : requestAnimationFrame(check);
          check();
        });
      state.modelhubBenchEmpty = true;
      button.click();
      await until(() => rows() === 0);
      state.modelhubBenchEmpty = false;
      const start = performance.now();
      button.click();
      await until(() => rows() === count);
      root.getBoundingClientRect();
      void document.body.offsetHeight;
      return performance.now() - start;
    }, MODELS);
    refreshTimes.push(ms);
  }

  const result = {
    models: MODELS,
    repeats: REPEATS,
    render_ms: { median: median(renderTimes), max: Math.max(...renderTimes) },
    refresh_ms: {
      median: median(refreshTimes),
      max: Math.max(...refreshTimes)
    },
    floor_ms: 300
  };
  console.log(`MODELHUB_BENCH ${JSON.stringify(result)}`);
  if (process.env.MODELHUB_BENCH_OUTPUT) {
    fs.writeFileSync(process.env.MODELHUB_BENCH_OUTPUT, JSON.stringify(result));
  }
});
