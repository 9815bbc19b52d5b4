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

// Tall enough for the whole sidebar in its screenshots.
test.use({ autoGoto: false, viewport: { width: 1280, height: 1100 } });

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

test('deploy from the sidebar, update, promote, A/B test, canary, roll back and stop', async ({
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
  await form
    .getByLabel('Version or stage', { exact: true })
    .selectOption({ label: 'v0.0.1' });
  await form.getByLabel('Target', { exact: true }).selectOption('local');
  await form.getByLabel('Deployment name', { exact: true }).fill(DEPLOYMENT);
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

  // Promote v0.0.1 to prod from its version row, after a confirmation.
  await modelRow.locator('.jp-ModelHub-modelToggle').click();
  const v1 = modelRow.locator('.jp-ModelHub-versionRow[data-version="v0.0.1"]');
  await v1
    .getByRole('button', { name: `Promote ${MODEL_NAME} v0.0.1 to a stage` })
    .click();
  const promoteForm = page.locator('.jp-Dialog', {
    hasText: `Promote a version of ${MODEL_NAME}`
  });
  await expect(promoteForm.getByLabel('Version', { exact: true })).toHaveValue(
    'v0.0.1'
  );
  await expect(promoteForm.getByLabel('Stage', { exact: true })).toHaveValue(
    'prod'
  );
  await promoteForm.getByRole('button', { name: 'Promote' }).click();
  const promoteConfirmation = page.locator('.jp-Dialog', {
    hasText: `Put ${MODEL_NAME} v0.0.1 into prod?`
  });
  await promoteConfirmation.getByRole('button', { name: 'Promote' }).click();
  await expect(
    modelRow.locator('.jp-ModelHub-modelMeta .jp-ModelHub-stageBadge')
  ).toHaveText('prod: v0.0.1');
  await expect(
    v1.getByRole('button', { name: `Take prod away from ${MODEL_NAME} v0.0.1` })
  ).toBeVisible();

  // An A/B test of v0.0.1 against the v0.0.2 champion, started from the sidebar.
  const experiments = panel.getByRole('region', { name: 'Experiments' });
  await expect(experiments).toContainText('No experiment is running.');
  await experiments
    .getByRole('button', { name: 'Start an experiment' })
    .click();
  await chooseInDialog(page, DEPLOYMENT);
  const experimentForm = page.locator('.jp-Dialog', {
    hasText: `Start an experiment on ${DEPLOYMENT}`
  });
  await experimentForm
    .getByLabel('Challenger', { exact: true })
    .selectOption({ label: 'v0.0.1' });
  await experimentForm
    .getByLabel('Kind', { exact: true })
    .selectOption('split');
  await experimentForm
    .getByLabel('Split (A/B: champion/challenger)', { exact: true })
    .fill('80/20');
  await experimentForm.getByRole('button', { name: 'Start' }).click();
  const experiment = experiments.locator(
    `.jp-ModelHub-experimentRow[data-deployment-name="${DEPLOYMENT}"]`
  );
  await expect(experiment.locator('.jp-ModelHub-trafficKind')).toHaveText(
    'A/B split',
    { timeout: 120_000 }
  );
  await expect(experiment).toContainText('v0.0.2 vs v0.0.1');
  await expect(row.locator('.jp-ModelHub-traffic')).toContainText('v0.0.2 80%');
  await expect(row.locator('.jp-ModelHub-traffic')).toContainText('v0.0.1 20%');
  // The server's verdict replaces the placeholder once the report was read.
  await expect(experiment.locator('.jp-ModelHub-verdict')).not.toHaveText(
    'Waiting for a verdict…',
    { timeout: 30_000 }
  );

  // Traffic, until the live requests/s sparkline shows it.
  const status = await (
    await page.request.get(`/modelhub/api/deployments/${DEPLOYMENT}`)
  ).json();
  const requestsPerSecond = row.locator('.jp-ModelHub-sparklineValue').first();
  let sending = true;
  const traffic = (async () => {
    const rows = [
      [0.1, -1.2, 0.3, 2.0],
      [1.5, 0.2, -0.7, 0.1]
    ];
    while (sending) {
      const reply = await page.request.post(
        `${status.endpoint}/v2/models/${MODEL_NAME}/infer`,
        {
          data: {
            inputs: [
              {
                name: 'input',
                shape: [2, 4],
                datatype: 'FP64',
                data: rows.flat()
              }
            ]
          }
        }
      );
      expect(reply.status()).toBe(200);
    }
  })();
  try {
    await expect(requestsPerSecond).toHaveText(/^[1-9][0-9.]* req\/s$/, {
      timeout: 60_000
    });
  } finally {
    sending = false;
    await traffic;
  }
  await expect(row.locator('.jp-ModelHub-sparklineValue').nth(1)).toHaveText(
    /^[0-9.]+ ms p50$/
  );

  // Screenshots of the sidebar with a live deployment and its A/B test, light then dark.
  const sidebar = page.locator('#jupyter-modelhub-panel');
  await screenshot(sidebar, 'sidebar-light.png', testInfo);
  await page.theme.setDarkTheme();
  await screenshot(sidebar, 'sidebar-dark.png', testInfo);
  await page.theme.setLightTheme();

  // Stop the A/B test, after a confirmation: all traffic back to the champion.
  await experiment
    .getByRole('button', { name: `Stop the experiment on ${DEPLOYMENT}` })
    .click();
  await page
    .locator('.jp-Dialog', { hasText: `End the experiment on ${DEPLOYMENT}?` })
    .getByRole('button', { name: 'Stop experiment' })
    .click();
  await expect(experiments).toContainText('No experiment is running.');
  await expect(row.locator('.jp-ModelHub-traffic')).toHaveCount(0);

  // A canary of v0.0.1 in two steps: advance it by hand, then promote it.
  await experiments
    .getByRole('button', { name: 'Start an experiment' })
    .click();
  await chooseInDialog(page, DEPLOYMENT);
  await experimentForm
    .getByLabel('Challenger', { exact: true })
    .selectOption({ label: 'v0.0.1' });
  await experimentForm
    .getByLabel('Kind', { exact: true })
    .selectOption('canary');
  await experimentForm
    .getByLabel('Canary steps (%)', { exact: true })
    .fill('10,50');
  await experimentForm.getByRole('button', { name: 'Start' }).click();
  await expect(experiment.locator('.jp-ModelHub-trafficKind')).toHaveText(
    'canary',
    { timeout: 120_000 }
  );
  await expect(experiment.locator('.jp-ModelHub-canaryStep')).toHaveText(
    'step 1/2'
  );
  await expect(row.locator('.jp-ModelHub-traffic')).toContainText('v0.0.1 10%');
  await experiment
    .getByRole('button', {
      name: `Move the canary of ${DEPLOYMENT} to its next step`
    })
    .click();
  await expect(experiment.locator('.jp-ModelHub-canaryStep')).toHaveText(
    'step 2/2'
  );
  await expect(row.locator('.jp-ModelHub-traffic')).toContainText('v0.0.1 50%');
  await experiment
    .getByRole('button', {
      name: `Make the challenger of ${DEPLOYMENT} the champion`
    })
    .click();
  await page
    .locator('.jp-Dialog', {
      hasText: `Make v0.0.1 the champion of ${DEPLOYMENT}?`
    })
    .getByRole('button', { name: 'Promote' })
    .click();
  await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
    `${MODEL_NAME} v0.0.1`,
    { timeout: 120_000 }
  );
  await expect(experiments).toContainText('No experiment is running.');

  // Roll back to revision 2 (v0.0.2), chosen from the history.
  await row.getByRole('button', { name: `Roll back ${DEPLOYMENT}` }).click();
  await chooseInDialog(page, 'revision 2: v0.0.2');
  await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
    `${MODEL_NAME} v0.0.2`,
    { timeout: 120_000 }
  );
  // The rollback is a new revision; its notification names it (the update's may linger).
  const revision = (await row.locator('.jp-ModelHub-revision').textContent())!;
  expect(revision).toMatch(/^rev ([3-9]|[1-9][0-9]+)$/);
  await expect(
    page.getByRole('alert').filter({
      hasText: `ModelHub: ${DEPLOYMENT} serves v0.0.2 (revision ${revision.slice(4)}).`
    })
  ).toBeVisible();

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

test('the deploy dialog asks for kubernetes options only for kubernetes, and the server checks them', async ({
  page,
  tmpPath
}) => {
  const model = 'k8s-demo';
  const modelPath = `${tmpPath}/${MODEL_FILE}`;
  expect(
    await page.contents.uploadFile(
      path.join(__dirname, '..', 'fixtures', MODEL_FILE),
      modelPath
    )
  ).toBe(true);
  const response = await page.request.post('/modelhub/api/models', {
    data: { path: modelPath, name: model }
  });
  expect(response.status(), await response.text()).toBe(201);

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await panel.getByRole('button', { name: 'Deploy a model' }).click();
  await chooseInDialog(page, model);
  const form = page.locator('.jp-Dialog', { hasText: `Deploy ${model}` });
  const kubernetesFields = [
    'Namespace',
    'Kubeconfig context',
    'Image',
    'Secret'
  ];
  await form.getByLabel('Target', { exact: true }).selectOption('local');
  for (const label of kubernetesFields) {
    await expect(form.getByLabel(label, { exact: true })).toBeHidden();
  }
  await form.getByLabel('Target', { exact: true }).selectOption('kubernetes');
  for (const label of kubernetesFields) {
    await expect(form.getByLabel(label, { exact: true })).toBeVisible();
  }
  // A namespace Kubernetes would refuse: the server says why, before any cluster is asked.
  await form.getByLabel('Namespace', { exact: true }).fill('Not_A_Namespace');
  await form.getByRole('button', { name: 'Deploy' }).click();
  await expect(
    page.getByRole('alert').filter({
      hasText: "ModelHub: Invalid namespace 'Not_A_Namespace'."
    })
  ).toBeVisible();
  await expect(
    panel.getByRole('region', { name: 'Deployments' })
  ).toContainText('Nothing is deployed.');
});
