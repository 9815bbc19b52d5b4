import {
  ILayoutRestorer,
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ISettingRegistry } from '@jupyterlab/settingregistry';

import { CommandIDs } from './commands';
import { ModelsPanel } from './components/ModelsPanel';
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
 * The ModelHub sidebar: browse the registered models of the hub served by Jupyter.
 */
const plugin: JupyterFrontEndPlugin<IModelHubModel> = {
  id: PLUGIN_ID,
  description:
    'Register, deploy, A/B-test, monitor and roll back models from JupyterLab',
  autoStart: true,
  provides: IModelHubModel,
  optional: [ICommandPalette, ILayoutRestorer, ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    palette: ICommandPalette | null,
    restorer: ILayoutRestorer | null,
    settingRegistry: ISettingRegistry | null
  ): IModelHubModel => {
    const { commands, shell } = app;

    // Poll only while the panel is shown and the browser tab visible.
    let panel: ModelsPanel | null = null;
    const model = new ModelHubModel({
      refreshInterval: DEFAULT_REFRESH_INTERVAL,
      standby: () => document.hidden || !panel?.isVisible
    });

    panel = new ModelsPanel({ model });
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
      caption: 'Fetch the list of registered models again',
      execute: () => model.refresh()
    });

    for (const command of [CommandIDs.openPanel, CommandIDs.refresh]) {
      palette?.addItem({ command, category: CATEGORY });
    }

    if (settingRegistry) {
      const applySettings = (settings: ISettingRegistry.ISettings): void => {
        model.refreshInterval =
          (settings.get('refreshInterval').composite as number) ??
          DEFAULT_REFRESH_INTERVAL;
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
