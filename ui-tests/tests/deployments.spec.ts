import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator, TestInfo } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

const MODEL_NAME = 'sidebar-demo';
const MODEL_FILE = 'demo-model.joblib';
const DEPLOYMENT = 'sidebar-svc';

/**
 * Where the README's screenshots live; the test copies its screenshots there when
 * MODELHUB_UPDATE_DOCS_IMAGES=1 (otherwise they stay test artifacts only).
 */
const DOCS_IMAGES = path.join(__dirname, '..', '..', 'docs', 'images');

test.use({ autoGoto: false });

// A real deployment takes a few seconds to start, update and roll back.
test.setTimeout(240_000);

/**
 * Save a screenshot of `target` as a test artifact, and in docs/images when asked.
 */
async function screenshot(
  target: Locator,
  name: string,
  testInfo: TestInfo
): Promise<void> {
  const artifact = testInfo.outputPath(name);
  await target.screenshot({ path: artifact });
  await testInfo.attach(name, { path: artifact, contentType: 'image/png' });
  if (process.env.MODELHUB_UPDATE_DOCS_IMAGES === '1') {
    fs.mkdirSync(DOCS_IMAGES, { recursive: true });
    fs.copyFileSync(artifact, path.join(DOCS_IMAGES, name));
  }
}

/**
 * Answer the dialog on screen with the option whose label starts with `label`, then `accept`.
 */
async function chooseInDialog(
  page: IJupyterLabPageFixture,
  label: string,
  accept = 'OK'
): Promise<void> {
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toBeVisible();
  const select = dialog.locator('select').first();
  const option = select.locator('option', { hasText: label }).first();
  await select.selectOption({ label: (await option.textContent()) ?? label });
  await dialog.getByRole('button', { name: accept }).click();
}

test('deploy from the sidebar, see it ready, update, roll back and stop it', async ({
  page,
  tmpPath
}, testInfo) => {
  // Two versions of a model, registered through the REST API.
  const modelPath = `${tmpPath}/${MODEL_FILE}`;
  expect(
    await page.contents.uploadFile(
      path.join(__dirname, '..', 'fixtures', MODEL_FILE),
      modelPath
    )
  ).toBe(true);
  for (const description of ['first', 'second']) {
    const response = await page.request.post('/modelhub/api/models', {
      data: { path: modelPath, name: MODEL_NAME, description }
    });
    expect(response.status(), await response.text()).toBe(201);
  }

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  const modelRow = panel.locator(
    `.jp-ModelHub-modelRow[data-model-name="${MODEL_NAME}"]`
  );
  await expect(modelRow.locator('.jp-ModelHub-modelLatest')).toHaveText(
    'v0.0.2'
  );
  const deploymentsSection = panel.getByRole('region', {
    name: 'Deployments'
  });
  await expect(deploymentsSection).toContainText('Nothing is deployed.');

  // Deploy v0.0.1 through the dialog.
  await deploymentsSection
    .getByRole('button', { name: 'Deploy a model' })
    .click();
  await chooseInDialog(page, MODEL_NAME);
  const form = page.locator('.jp-Dialog');
  await expect(form.locator('.jp-Dialog-header')).toHaveText(
    `Deploy ${MODEL_NAME}`
  );
  await form.getByLabel('Version or stage').selectOption({ label: 'v0.0.1' });
  await form.getByLabel('Target').selectOption('local');
  await form.getByLabel('Deployment name').fill(DEPLOYMENT);
  await form.getByRole('button', { name: 'Deploy' }).click();

  // It shows as busy, then ready.
  const row = panel.locator(
    `.jp-ModelHub-deploymentRow[data-deployment-name="${DEPLOYMENT}"]`
  );
  await expect(row.locator('.jp-ModelHub-phase')).toHaveText('running', {
    timeout: 120_000
  });
  await expect(row.locator('.jp-ModelHub-replicas')).toHaveText('1/1 ready');
  await expect(row.locator('.jp-ModelHub-target')).toHaveText('local');
  await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
    `${MODEL_NAME} v0.0.1`
  );
  await expect(
    page.getByRole('alert').filter({
      hasText: `ModelHub: ${DEPLOYMENT} serves v0.0.1 at http://127.0.0.1:`
    })
  ).toBeVisible();
  // No request was logged and no reference data kept: the badge says so, calmly.
  await expect(row.locator('.jp-ModelHub-driftBadge')).toHaveText(
    'drift: no data'
  );

  // Update to v0.0.2.
  await row
    .getByRole('button', { name: `Update ${DEPLOYMENT} to another version` })
    .click();
  await chooseInDialog(page, 'v0.0.2');
  await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
    `${MODEL_NAME} v0.0.2`,
    { timeout: 120_000 }
  );
  await expect(row.locator('.jp-ModelHub-revision')).toHaveText('rev 2');
  await expect(row.locator('.jp-ModelHub-phase')).toHaveText('running');

  // Screenshots of the sidebar with a live deployment, light then dark.
  const sidebar = page.locator('#jupyter-modelhub-panel');
  await screenshot(sidebar, 'sidebar-light.png', testInfo);
  await page.theme.setDarkTheme();
  await screenshot(sidebar, 'sidebar-dark.png', testInfo);
  await page.theme.setLightTheme();

  // Roll back to revision 1 (v0.0.1), chosen from the history.
  await row.getByRole('button', { name: `Roll back ${DEPLOYMENT}` }).click();
  await chooseInDialog(page, 'revision 1: v0.0.1');
  await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
    `${MODEL_NAME} v0.0.1`,
    { timeout: 120_000 }
  );
  await expect(row.locator('.jp-ModelHub-revision')).toHaveText('rev 3');

  // Stop it, after a confirmation.
  await row.getByRole('button', { name: `Stop ${DEPLOYMENT}` }).click();
  const confirmation = page.locator('.jp-Dialog');
  await expect(confirmation).toContainText(`Stop ${DEPLOYMENT}?`);
  await confirmation.getByRole('button', { name: 'Stop' }).click();
  await expect(row).toHaveCount(0, { timeout: 60_000 });
  await expect(deploymentsSection).toContainText('Nothing is deployed.');
});

test('a deploy in flight shows progress, and its failure the server message', async ({
  page
}) => {
  // The deploy answers only once the test has seen its progress: no timing involved.
  let answer: () => void = () => undefined;
  const answered = new Promise<void>(resolve => (answer = resolve));
  await page.route(/\/modelhub\/api\/deployments(\?.*)?$/, async route => {
    if (route.request().method() === 'POST') {
      await answered;
      await route.fulfill({
        status: 502,
        contentType: 'application/json',
        body: JSON.stringify({
          error: 'BACKEND_ERROR',
          message: 'Deployment broken failed: the model did not load'
        })
      });
    } else {
      await route.continue();
    }
  });
  await page.route(/\/modelhub\/api\/models(\?.*)?$/, route =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({
        models: [
          {
            name: 'broken',
            latest: 'v0.0.1',
            versions: 1,
            stages: {},
            updated: null,
            deprecated: false
          }
        ]
      })
    })
  );
  await page.route(/\/modelhub\/api\/models\/broken(\?.*)?$/, route =>
    route.fulfill({
      status: 200,
      contentType: 'application/json',
      body: JSON.stringify({
        name: 'broken',
        stages: {},
        versions: [
          {
            meta: { name: 'broken', version: 'v0.0.1' },
            tag: 'broken@v0.0.1',
            commit: '0000000',
            stages: [],
            deprecated: false
          }
        ]
      })
    })
  );

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await panel.getByRole('button', { name: 'Deploy a model' }).click();
  await chooseInDialog(page, 'broken');
  await page
    .locator('.jp-Dialog')
    .getByRole('button', { name: 'Deploy' })
    .click();

  // While the server works, the section says so, and the rest of the UI still answers.
  const pending = panel.getByRole('status').filter({
    hasText: 'Deploying broken…'
  });
  await expect(pending).toBeVisible();
  await panel
    .getByRole('searchbox', { name: 'Filter models by name' })
    .fill('bro');
  await expect(
    panel.getByRole('searchbox', { name: 'Filter models by name' })
  ).toHaveValue('bro');
  answer();

  await expect(
    page.getByRole('alert').filter({
      hasText: 'ModelHub: Deployment broken failed: the model did not load'
    })
  ).toBeVisible();
  await expect(pending).toHaveCount(0);
  await expect(
    panel.getByRole('button', { name: 'Deploy a model' })
  ).toBeEnabled();
});
