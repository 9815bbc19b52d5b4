import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  INotebookTracker,
  NotebookActions,
  NotebookPanel
} from '@jupyterlab/notebook';

/**
 * The dashboards a deployment has, as `%modelhub` verbs (see `%modelhub --help`).
 */
export type DashboardKind = 'monitor' | 'drift';

/**
 * The code of the cell that shows a deployment's dashboard.
 *
 * `%load_ext` first, so that the cell also works in a kernel that has not loaded the magics.
 */
export function dashboardCode(kind: DashboardKind, name: string): string {
  return `%load_ext jupyter_modelhub\n%modelhub ${kind} ${name}`;
}

/**
 * Insert the dashboard's cell below the active cell of the notebook in the main area and
 * run it; without such a notebook, open a new one with that cell and run it.
 *
 * @returns the notebook the cell runs in.
 */
export async function openDashboard(
  app: JupyterFrontEnd,
  tracker: INotebookTracker | null,
  kind: DashboardKind,
  name: string
): Promise<NotebookPanel> {
  const code = dashboardCode(kind, name);
  const current = tracker?.currentWidget ?? null;
  let panel: NotebookPanel;
  if (current !== null && current === app.shell.currentWidget) {
    panel = current;
    NotebookActions.insertBelow(panel.content);
  } else {
    panel = (await app.commands.execute('notebook:create-new', {
      kernelName: 'python3'
    })) as NotebookPanel;
    await panel.context.ready;
  }
  const cell = panel.content.activeCell;
  if (cell === null) {
    throw new Error('The notebook has no cell to write the dashboard in.');
  }
  cell.model.sharedModel.setSource(code);
  await panel.sessionContext.ready;
  await NotebookActions.run(panel.content, panel.sessionContext);
  app.shell.activateById(panel.id);
  return panel;
}
