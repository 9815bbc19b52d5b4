import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { IDefaultFileBrowser } from '@jupyterlab/filebrowser';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { addActionCommands } from './actions';
import { CommandIDs } from './commands';
import { ModelsPanel } from './components/ModelsPanel';
import { DEFAULT_MONITOR_INTERVAL, DeploymentsModel } from './deployments';
import { modelHubIcon } from './icons';
import { DEFAULT_REFRESH_INTERVAL, ModelHubModel } from './model';
import { IModelHubModel } from './tokens';

/**
 * Id of the plugin, also the key of its settings.
 */
const PLUGIN_ID = 'jupyter-modelhub:plugin';

/**
 * Id of the sidebar panel.
 */
const PANEL_ID = 'jupyter-modelhub-panel';

/**
 * Palette category of the commands.
 */
const CATEGORY = 'ModelHub';

/**
 * The ModelHub sidebar: the models, deployments and experiments of the hub served by Jupyter.
 */
const plugin: JupyterFrontEndPlugin<IModelHubModel> = {
  id: PLUGIN_ID,
  description:
    'Register, deploy, A/B-test, monitor and roll back models from JupyterLab',
  autoStart: true,
  provides: IModelHubModel,
  optional: [
    ICommandPalette,
    ILayoutRestorer,
    ISettingRegistry,
    INotebookTracker,
    IDefaultFileBrowser
  ],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null,
    tracker: INotebookTracker | null,
    fileBrowser: IDefaultFileBrowser | null
  ): IModelHubModel => {
    const { commands, shell } = app;

    // Poll only while the panel is shown and the browser tab visible.
    let panel: ModelsPanel | null = null;
    const standby = () => document.hidden || !panel?.isVisible;
    const model = new ModelHubModel({
      refreshInterval: DEFAULT_REFRESH_INTERVAL,
      standby
    });
    const deployments = new DeploymentsModel({
      refreshInterval: DEFAULT_REFRESH_INTERVAL,
      monitorInterval: DEFAULT_MONITOR_INTERVAL,
      standby
    });

    panel = new ModelsPanel({ model, deployments, commands });
    panel.id = PANEL_ID;
    panel.title.icon = modelHubIcon;
    panel.title.caption = 'ModelHub';
    shell.add(panel, 'left', { rank: 900 });
    restorer?.add(panel, PANEL_ID);

    commands.addCommand(CommandIDs.openPanel, {
      label: 'ModelHub: Open panel',
      caption: 'Open the ModelHub sidebar',
      icon: modelHubIcon,
      execute: () => {
        shell.activateById(PANEL_ID);
      }
    });

    commands.addCommand(CommandIDs.refresh, {
      label: 'ModelHub: Refresh',
      caption: 'Fetch the models and deployments again',
      execute: () => Promise.all([model.refresh(), deployments.refresh()])
    });

    for (const command of [CommandIDs.openPanel, CommandIDs.refresh]) {
      palette?.addItem({ command, category: CATEGORY });
    }

    addActionCommands({ app, models: model, deployments, tracker, palette });

    if (fileBrowser) {
      commands.addCommand(CommandIDs.registerSelectedFile, {
        label: 'Register as ModelHub Model…',
        caption: 'Register this file as a new version of a model',
        icon: modelHubIcon,
        isVisible: () =>
          fileBrowser.selectedItems().next().value?.type === 'file',
        execute: () => {
          const item = fileBrowser.selectedItems().next().value;
          if (!item) {
            return;
          }
          // A suggestion only: the server checks the name.
          const stem = item.name.replace(/\.[^.]*$/, '');
          const suggested = stem.toLowerCase().replace(/[^a-z0-9_-]+/g, '-');
          return commands.execute(CommandIDs.registerModel, {
            path: item.path,
            model: suggested
          });
        }
      });
      app.contextMenu.addItem({
        command: CommandIDs.registerSelectedFile,
        selector: '.jp-DirListing-item[data-isdir="false"]',
        rank: 20
      });
    }

    if (settingRegistry) {
      const applySettings = (settings: ISettingRegistry.ISettings): void => {
        const refresh =
          (settings.get('refreshInterval').composite as number) ??
          DEFAULT_REFRESH_INTERVAL;
        model.refreshInterval = refresh;
        deployments.refreshInterval = refresh;
        deployments.monitorInterval =
          (settings.get('monitorInterval').composite as number) ??
          DEFAULT_MONITOR_INTERVAL;
      };
      settingRegistry
        .load(PLUGIN_ID)
        .then(settings => {
          applySettings(settings);
          settings.changed.connect(applySettings);
        })
        .catch(reason => {
          console.error('jupyter-modelhub: failed to load settings.', reason);
        });
    }

    return model;
  }
};

export default plugin;
export * from './tokens';
