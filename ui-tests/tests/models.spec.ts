import { expect, test } from '@jupyterlab/galata';
import * as path from 'path';

const MODEL_FILE = 'demo-model.joblib';

test('register a file from the file browser, then find it with the filter', async ({
  page,
  tmpPath
}) => {
  await page.contents.uploadFile(
    path.join(__dirname, '..', 'fixtures', MODEL_FILE),
    `${tmpPath}/${MODEL_FILE}`
  );
  await page.filebrowser.refresh();

  // The file's context menu offers to register it; the form is filled in from the file.
  await page
    .locator('.jp-DirListing-item', { hasText: MODEL_FILE })
    .click({ button: 'right' });
  await page
    .getByRole('menuitem', { name: 'Register as ModelHub Model…' })
    .click();
  const form = page.locator('.jp-Dialog', {
    hasText: 'Register a model from a file'
  });
  await expect(
    form.getByLabel('File (relative to the server root)', { exact: true })
  ).toHaveValue(`${tmpPath}/${MODEL_FILE}`);
  await expect(form.getByLabel('Model name', { exact: true })).toHaveValue(
    'demo-model'
  );
  await form.getByLabel('Description', { exact: true }).fill('from the menu');
  await form.getByRole('button', { name: 'Register' }).click();
  await expect(
    page.getByRole('alert').filter({
      hasText: 'ModelHub: Registered demo-model@v0.0.1.'
    })
  ).toBeVisible();

  // The sidebar lists it (with the hub it reads), and the filter finds it.
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await expect(panel.locator('.jp-ModelHub-hubPath')).toHaveText(/hub$/);
  const row = panel.locator(
    '.jp-ModelHub-modelRow[data-model-name="demo-model"]'
  );
  await expect(row.locator('.jp-ModelHub-modelLatest')).toHaveText('v0.0.1');
  // Its version's lineage: what it was registered with.
  await row.locator('.jp-ModelHub-modelToggle').click();
  const provenance = row.locator('.jp-ModelHub-provenance');
  await provenance.getByText('Signature and lineage').click();
  await expect(provenance).toContainText('python');
  await expect(provenance).toContainText('scikit-learn');
  const filter = panel.getByRole('searchbox', {
    name: 'Filter models by name'
  });
  await filter.fill('nothing-like-it');
  await expect(row).toHaveCount(0);
  await expect(panel).toContainText('No model matches “nothing-like-it”.');
  await filter.fill('DEMO');
  await expect(row).toHaveCount(1);
});

test('a registration the server refuses shows its message', async ({
  page
}) => {
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');
  await panel
    .getByRole('button', { name: 'Register a model from a file' })
    .click();
  const form = page.locator('.jp-Dialog', {
    hasText: 'Register a model from a file'
  });
  await form
    .getByLabel('File (relative to the server root)', { exact: true })
    .fill('no/such/file.joblib');
  await form.getByLabel('Model name', { exact: true }).fill('ghost');
  await form.getByRole('button', { name: 'Register' }).click();
  await expect(
    page.getByRole('alert').filter({ hasText: 'no/such/file.joblib' })
  ).toBeVisible();
});

test('the actions are in the command palette and work from the keyboard', async ({
  page
}) => {
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');

  // The sidebar buttons are real buttons: focused, Enter runs them; the form takes the focus.
  const register = panel.getByRole('button', {
    name: 'Register a model from a file'
  });
  await register.focus();
  await page.keyboard.press('Enter');
  const form = page.locator('.jp-Dialog', {
    hasText: 'Register a model from a file'
  });
  await expect(
    form.getByLabel('File (relative to the server root)', { exact: true })
  ).toBeFocused();
  await page.keyboard.press('Escape');
  await expect(form).toHaveCount(0);

  // The palette lists the ModelHub commands.
  await page.keyboard.press('Control+Shift+C');
  const palette = page.locator('#modal-command-palette');
  await expect(palette).toBeVisible();
  await page.keyboard.type('ModelHub: Roll back');
  await expect(
    palette.locator('.lm-CommandPalette-item', {
      hasText: 'ModelHub: Roll back deployment…'
    })
  ).toBeVisible();
  await page.keyboard.press('Enter');
  // Nothing is deployed (each test stops what it deploys): it says so rather than fail.
  await expect(
    page.getByRole('alert').filter({
      hasText: 'ModelHub: no deployment to choose from.'
    })
  ).toBeVisible();
});

test('a hub that is gone is one notification, and said in each section', async ({
  page
}) => {
  const message = 'No hub at /nowhere/hub. Create one with `modelhub init`.';
  await page.route(/\/modelhub\/api\/(models|deployments)(\?.*)?$/, route =>
    route.fulfill({
      status: 404,
      contentType: 'application/json',
      body: JSON.stringify({ error: 'HUB_DOES_NOT_EXIST', message })
    })
  );
  await page.sidebar.openTab('jupyter-modelhub-panel');
  const panel = page.locator('#jupyter-modelhub-panel');

  for (const section of ['Models', 'Deployments']) {
    await expect(
      panel.getByRole('region', { name: section }).getByRole('alert')
    ).toHaveText(message);
  }
  await expect(
    page.getByRole('alert').filter({ hasText: `ModelHub: ${message}` })
  ).toHaveCount(1);
});
