import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const MODEL_NAME = 'galata-demo';
const MODEL_FILE = 'demo-model.joblib';
const SCREENSHOT = path.join(
  __dirname,
  '..',
  'test-results',
  'modelhub-panel.png'
);

test.use({ autoGoto: false });

test('a model registered through the REST API shows in the ModelHub panel', async ({
  page,
  tmpPath
}) => {
  // Put a fitted scikit-learn model in the test's folder of the server (contents API).
  const modelPath = `${tmpPath}/${MODEL_FILE}`;
  const uploaded = await page.contents.uploadFile(
    path.join(__dirname, '..', 'fixtures', MODEL_FILE),
    modelPath
  );
  expect(uploaded).toBe(true);

  // Register it as a new model with the ModelHub REST API.
  const response = await page.request.post('/modelhub/api/models', {
    data: {
      path: modelPath,
      name: MODEL_NAME,
      description: 'Registered by the Galata test'
    }
  });
  expect(response.status(), await response.text()).toBe(201);
  const version = await response.json();
  expect(version.meta.version).toBe('v0.0.1');
  expect(version.tag).toBe(`${MODEL_NAME}@v0.0.1`);

  await page.goto();

  // Open the panel from its left sidebar tab.
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await expect(panel).toBeVisible();
  await expect(panel.getByRole('heading', { name: 'Models' })).toBeVisible();

  const row = panel.locator(
    `.jp-ModelHub-modelRow[data-model-name="${MODEL_NAME}"]`
  );
  await expect(row).toBeVisible();
  await expect(row.locator('.jp-ModelHub-modelName')).toHaveText(MODEL_NAME);
  await expect(row.locator('.jp-ModelHub-modelLatest')).toHaveText('v0.0.1');
  await expect(row.locator('.jp-ModelHub-versionCount')).toHaveText(
    '1 version'
  );

  // Expanding the row lists the version with its flavor.
  await row.getByRole('button', { name: new RegExp(MODEL_NAME) }).click();
  const versionRow = row.locator(
    '.jp-ModelHub-versionRow[data-version="v0.0.1"]'
  );
  await expect(versionRow).toBeVisible();

  await panel.screenshot({ path: SCREENSHOT });
});

test('a server error shows inline and as a notification', async ({ page }) => {
  const message = 'MODELHUB_HUB points to /nowhere, which is not a hub';
  await page.route(/\/modelhub\/api\/models(\?.*)?$/, route =>
    route.fulfill({
      status: 500,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'BACKEND_ERROR', message })
    })
  );

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');

  await expect(panel.getByRole('alert')).toHaveText(message);
  await expect(
    page.locator('.jp-Notification-Toast-error', { hasText: message })
  ).toBeVisible();
});
