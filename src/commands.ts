/**
 * Identifiers of the commands added by the extension.
 *
 * Commands on a deployment take `{ name }`, on a model `{ model }` (and `version` or `stage`);
 * without them, they ask the user.
 */
export namespace CommandIDs {
  /** Open (activate) the ModelHub sidebar panel. */
  export const openPanel = 'modelhub:open-panel';

  /** Fetch the models and deployments from the server now. */
  export const refresh = 'modelhub:refresh';

  /** Register a file of the server as a new model version (a dialog). */
  export const registerModel = 'modelhub:register-model';

  /** Register the file selected in the file browser (its context menu). */
  export const registerSelectedFile = 'modelhub:register-selected-file';

  /** Put a version of a model into a stage (a dialog). */
  export const promoteVersion = 'modelhub:promote-version';

  /** Take a stage away from a model (a confirmation). */
  export const demoteStage = 'modelhub:demote-stage';

  /** Deploy a model version (a dialog). */
  export const deploy = 'modelhub:deploy';

  /** Roll a deployment to another version (a dialog). */
  export const update = 'modelhub:update-deployment';

  /** Roll a deployment back to one of its revisions (a dialog). */
  export const rollback = 'modelhub:rollback-deployment';

  /** Stop a deployment (a confirmation). */
  export const stop = 'modelhub:stop-deployment';

  /** Run `%modelhub monitor NAME` in a notebook. */
  export const openMonitor = 'modelhub:open-monitor';

  /** Run `%modelhub drift NAME` in a notebook. */
  export const openDrift = 'modelhub:open-drift';

  /** Start an experiment on a deployment (a dialog). */
  export const startExperiment = 'modelhub:start-experiment';

  /** End a deployment's experiment (a confirmation). */
  export const stopExperiment = 'modelhub:stop-experiment';

  /** Make an experiment's challenger the champion (a confirmation). */
  export const promoteExperiment = 'modelhub:promote-experiment';

  /** Move a canary to its next step now. */
  export const advanceExperiment = 'modelhub:advance-experiment';
}
