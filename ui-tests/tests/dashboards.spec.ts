import { expect, test } from '@jupyterlab/galata';
import * as fs from 'fs';
import * as path from 'path';

/**
 * Where the README's screenshots live; copied there when MODELHUB_UPDATE_DOCS_IMAGES=1.
 */
const DOCS_IMAGES = path.join(__dirname, '..', '..', 'docs', 'images');

const DEPLOYMENT = 'drifty-svc';

/**
 * A model registered with its reference data and deployed, from a notebook with the Python API
 * (the REST API takes no reference data).
 */
const SETUP = `import json, time, urllib.request
import numpy as np
from sklearn.linear_model import LogisticRegression
from jupyter_modelhub import Hub, ModelHubError

hub = Hub()
rng = np.random.default_rng(0)
X = rng.normal(size=(500, 4))
y = (X[:, 0] + 0.5 * X[:, 1] > 0).astype(int)
hub.register(LogisticRegression().fit(X, y), "drifty", sample=X[:5], reference=X)
endpoint = hub.deploy("drifty", "${DEPLOYMENT}", server={"log_flush_seconds": 1}).endpoint
print("deployed")`;

/**
 * 300 requests with three features shifted, then wait (in the kernel) for the server to have
 * written them to its prediction log.
 */
const TRAFFIC = `shifted = rng.normal(size=(300, 4))
shifted[:, 1] += 0.8
shifted[:, 2] += 1.2
shifted[:, 3] *= 2.0
for start in range(0, 300, 20):
    rows = shifted[start:start + 20]
    body = {"inputs": [{"name": "input", "shape": list(rows.shape), "datatype": "FP64",
                        "data": rows.ravel().tolist()}]}
    urllib.request.urlopen(urllib.request.Request(
        f"{endpoint}/v2/models/drifty/infer", json.dumps(body).encode(),
        {"Content-Type": "application/json"})).read()

deadline = time.monotonic() + 60
while True:
    try:
        if hub.drift("${DEPLOYMENT}").n_rows >= 300:
            break
    except ModelHubError:
        pass
    assert time.monotonic() < deadline, "the prediction log did not arrive"
    time.sleep(0.5)
print("logged")`;

// Tall enough for the whole dashboard in its screenshot.
test.use({ autoGoto: true, viewport: { width: 1280, height: 2000 } });
test.setTimeout(240_000);

test('the drift badge and the drift dashboard of a drifting deployment', async ({
  page,
  tmpPath
}, testInfo) => {
  // The scripts go in files run with %run: typing them in a cell would auto-indent them.
  await page.contents.uploadContent(SETUP, 'text', `${tmpPath}/setup_drift.py`);
  await page.contents.uploadContent(
    TRAFFIC,
    'text',
    `${tmpPath}/send_shifted.py`
  );
  await page.notebook.createNew('drift.ipynb');
  await page.notebook.setCell(0, 'code', '%run -i setup_drift.py');
  await page.notebook.addCell('code', '%run -i send_shifted.py');
  await page.notebook.run();
  const outputs = page.locator('.jp-Notebook .jp-Cell .jp-OutputArea');
  await expect(outputs.nth(0)).toHaveText('deployed', { timeout: 120_000 });
  await expect(outputs.nth(1)).toHaveText('logged', { timeout: 120_000 });

  // The badge says the requests drifted.
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await panel
    .getByRole('button', { name: 'Refresh models and deployments' })
    .click();
  const row = panel.locator(
    `.jp-ModelHub-deploymentRow[data-deployment-name="${DEPLOYMENT}"]`
  );
  const badge = row.locator('.jp-ModelHub-driftBadge');
  await expect(badge).toHaveAttribute('data-state', 'drift', {
    timeout: 30_000
  });
  await expect(badge).toHaveText('drift 3/4');
  await expect(badge).toHaveAttribute(
    'title',
    '3 of 4 features drifted over 300 requests'
  );

  // "Drift" inserts the dashboard's cell below the active one in this notebook, and runs it.
  await row
    .getByRole('button', {
      name: `Open the drift dashboard of ${DEPLOYMENT}`
    })
    .click();
  const cells = page.locator('.jp-Notebook .jp-Cell');
  await expect(cells).toHaveCount(3);
  await expect(cells.nth(2).locator('.jp-InputArea')).toContainText(
    `%modelhub drift ${DEPLOYMENT}`
  );
  const dashboard = cells.nth(2).locator('.jp-OutputArea');
  await expect(dashboard.locator('.js-plotly-plot').first()).toBeVisible({
    timeout: 60_000
  });
  await expect(dashboard).toContainText('f2');

  await page.sidebar.close('left');
  await dashboard.scrollIntoViewIfNeeded();
  const artifact = testInfo.outputPath('drift-dashboard.png');
  await dashboard.screenshot({ path: artifact });
  await testInfo.attach('drift-dashboard.png', {
    path: artifact,
    contentType: 'image/png'
  });
  if (process.env.MODELHUB_UPDATE_DOCS_IMAGES === '1') {
    fs.mkdirSync(DOCS_IMAGES, { recursive: true });
    fs.copyFileSync(artifact, path.join(DOCS_IMAGES, 'drift-dashboard.png'));
  }

  // Stop it from the sidebar, so that nothing outlives the test.
  await page.sidebar.openTab('jupyter-modelhub-panel');
  await row.getByRole('button', { name: `Stop ${DEPLOYMENT}` }).click();
  await page
    .locator('.jp-Dialog', { hasText: `Stop ${DEPLOYMENT}?` })
    .getByRole('button', { name: 'Stop' })
    .click();
  await expect(row).toHaveCount(0, { timeout: 60_000 });
});
