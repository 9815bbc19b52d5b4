import { expect, IJupyterLabPageFixture, test } from '@jupyterlab/galata';
import { Locator } from '@playwright/test';
import * as path from 'path';

const MODEL_FILE = 'demo-model.joblib';

test.use({ autoGoto: false });

// A real deployment takes a few seconds to start, switch and stop.
test.setTimeout(240_000);

/**
 * Register two versions of `model` through the REST API, open the sidebar and deploy
 * v0.0.2 as `deployment` (target `local`) with clicks.
 *
 * @returns the sidebar and the deployment's row.
 */
async function deployTwoVersions(
  page: IJupyterLabPageFixture,
  tmpPath: string,
  model: string,
  deployment: string
): Promise<{ panel: Locator; row: Locator }> {
  const modelPath = `${tmpPath}/${MODEL_FILE}`;
  expect(
    await page.contents.uploadFile(
      path.join(__dirname, '..', 'fixtures', MODEL_FILE),
      modelPath
    )
  ).toBe(true);
  for (const description of ['first', 'second']) {
    const response = await page.request.post('/modelhub/api/models', {
      data: { path: modelPath, name: model, description }
    });
    expect(response.status(), await response.text()).toBe(201);
  }

  await page.goto();
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await panel.getByRole('button', { name: 'Deploy a model' }).click();
  await chooseInDialog(page, model);
  const form = page.locator('.jp-Dialog', { hasText: `Deploy ${model}` });
  await form
    .getByLabel('Version or stage', { exact: true })
    .selectOption({ label: 'v0.0.2' });
  await form.getByLabel('Target', { exact: true }).selectOption('local');
  await form.getByLabel('Deployment name', { exact: true }).fill(deployment);
  await form.getByRole('button', { name: 'Deploy' }).click();
  const row = panel.locator(
    `.jp-ModelHub-deploymentRow[data-deployment-name="${deployment}"]`
  );
  await expect(row.locator('.jp-ModelHub-phase')).toHaveText('running', {
    timeout: 120_000
  });
  return { panel, row };
}

/**
 * Answer the dialog on screen with the option whose label starts with `label`, then OK.
 */
async function chooseInDialog(
  page: IJupyterLabPageFixture,
  label: string
): Promise<void> {
  const dialog = page.locator('.jp-Dialog');
  await expect(dialog).toBeVisible();
  const select = dialog.locator('select').first();
  const option = select.locator('option', { hasText: label }).first();
  await select.selectOption({ label: (await option.textContent()) ?? label });
  await dialog.getByRole('button', { name: 'OK' }).click();
}

/**
 * Start an experiment of v0.0.1 of kind `kind` on `deployment` from the Experiments section;
 * a blue-green or shadow experiment asks for nothing more.
 */
async function startExperiment(
  page: IJupyterLabPageFixture,
  panel: Locator,
  deployment: string,
  kind: 'bluegreen' | 'shadow'
): Promise<Locator> {
  const experiments = panel.getByRole('region', { name: 'Experiments' });
  await experiments
    .getByRole('button', { name: 'Start an experiment' })
    .click();
  await chooseInDialog(page, deployment);
  const form = page.locator('.jp-Dialog', {
    hasText: `Start an experiment on ${deployment}`
  });
  await form
    .getByLabel('Challenger', { exact: true })
    .selectOption({ label: 'v0.0.1' });
  await form.getByLabel('Kind', { exact: true }).selectOption(kind);
  for (const label of [
    'Split (A/B: champion/challenger)',
    'Canary steps (%)',
    'Guardrail: max error rate (0-1)'
  ]) {
    await expect(form.getByLabel(label, { exact: true })).toBeHidden();
  }
  await form.getByRole('button', { name: 'Start' }).click();
  return experiments.locator(
    `.jp-ModelHub-experimentRow[data-deployment-name="${deployment}"]`
  );
}

/**
 * Stop `deployment` from its row, after the confirmation.
 */
async function stopDeployment(
  page: IJupyterLabPageFixture,
  panel: Locator,
  row: Locator,
  deployment: string
): Promise<void> {
  await row.getByRole('button', { name: `Stop ${deployment}` }).click();
  await page
    .locator('.jp-Dialog', { hasText: `Stop ${deployment}?` })
    .getByRole('button', { name: 'Stop' })
    .click();
  await expect(row).toHaveCount(0, { timeout: 60_000 });
}

test('a shadow experiment from the sidebar shows how often the versions agree', async ({
  page,
  tmpPath
}) => {
  const deployment = 'shadow-svc';
  const { panel, row } = await deployTwoVersions(
    page,
    tmpPath,
    'shadow-demo',
    deployment
  );
  try {
    const experiment = await startExperiment(page, panel, deployment, 'shadow');
    await expect(experiment.locator('.jp-ModelHub-trafficKind')).toHaveText(
      'shadow',
      { timeout: 120_000 }
    );
    await expect(experiment).toContainText('v0.0.2 vs v0.0.1');

    // Requests, which the challenger sees copies of; the server then compares the answers.
    const status = await (
      await page.request.get(`/modelhub/api/deployments/${deployment}`)
    ).json();
    for (let i = 0; i < 20; i++) {
      const reply = await page.request.post(
        `${status.endpoint}/v2/models/shadow-demo/infer`,
        {
          data: {
            inputs: [
              {
                name: 'input',
                shape: [1, 4],
                datatype: 'FP64',
                data: [i / 10, -1.2, 0.3, 2.0 - i / 5]
              }
            ]
          }
        }
      );
      expect(reply.status()).toBe(200);
    }
    // The same model twice: every answer agrees, in the server's words.
    await expect(experiment.locator('.jp-ModelHub-verdict')).toContainText(
      /^100\.0% of [0-9,]+ requests agree/,
      { timeout: 60_000 }
    );

    await experiment
      .getByRole('button', { name: `Stop the experiment on ${deployment}` })
      .click();
    await page
      .locator('.jp-Dialog', {
        hasText: `End the experiment on ${deployment}?`
      })
      .getByRole('button', { name: 'Stop experiment' })
      .click();
    await expect(experiment).toHaveCount(0);
    await stopDeployment(page, panel, row, deployment);
  } finally {
    // Whatever happened, nothing keeps running (stopping what is stopped is no error).
    await page.request.delete(`/modelhub/api/deployments/${deployment}`);
  }
});

test('a blue-green switch from the sidebar, then its promotion', async ({
  page,
  tmpPath
}) => {
  const deployment = 'bluegreen-svc';
  const model = 'bluegreen-demo';
  const { panel, row } = await deployTwoVersions(
    page,
    tmpPath,
    model,
    deployment
  );
  try {
    const experiment = await startExperiment(
      page,
      panel,
      deployment,
      'bluegreen'
    );
    await expect(experiment.locator('.jp-ModelHub-trafficKind')).toHaveText(
      'blue-green',
      { timeout: 120_000 }
    );
    await expect(experiment).toContainText('v0.0.2 vs v0.0.1');
    // All traffic switched to the challenger.
    await expect(row.locator('.jp-ModelHub-traffic')).toContainText(
      'v0.0.1 100%'
    );

    await experiment
      .getByRole('button', {
        name: `Make the challenger of ${deployment} the champion`
      })
      .click();
    await page
      .locator('.jp-Dialog', {
        hasText: `Make v0.0.1 the champion of ${deployment}?`
      })
      .getByRole('button', { name: 'Promote' })
      .click();
    await expect(row.locator('.jp-ModelHub-deploymentVersion')).toHaveText(
      `${model} v0.0.1`,
      { timeout: 120_000 }
    );
    await expect(experiment).toHaveCount(0);
    await expect(row.locator('.jp-ModelHub-traffic')).toHaveCount(0);
    await stopDeployment(page, panel, row, deployment);
  } finally {
    // Whatever happened, nothing keeps running (stopping what is stopped is no error).
    await page.request.delete(`/modelhub/api/deployments/${deployment}`);
  }
});
