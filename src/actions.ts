import { JupyterFrontEnd } from '@jupyterlab/application';
import {
  ICommandPalette,
  InputDialog,
  Notification
} from '@jupyterlab/apputils';
import { INotebookTracker } from '@jupyterlab/notebook';
import { ReadonlyPartialJSONObject } from '@lumino/coreutils';

import { CommandIDs } from './commands';
import { DashboardKind, openDashboard } from './dashboards';
import {
  deployFields,
  deployRequest,
  experimentFields,
  experimentRequest
} from './dialogs';
import { confirm, showForm } from './form';
import { IDeploymentsModel, IModelDetail, IModelHubModel } from './tokens';

/**
 * Palette category of the commands.
 */
const CATEGORY = 'ModelHub';

/**
 * What the commands act on.
 */
export interface IActionsOptions {
  app: JupyterFrontEnd;
  models: IModelHubModel;
  deployments: IDeploymentsModel;
  tracker: INotebookTracker | null;
  palette: ICommandPalette | null;
}

/**
 * Add the commands on models, deployments and experiments (and their palette entries).
 *
 * Each one asks what it needs in a dialog, shows its progress as a notification, and
 * reports the server's message when it fails.
 */
export function addActionCommands(options: IActionsOptions): void {
  const { app, models, deployments, tracker, palette } = options;
  const { commands } = app;

  const add = (
    id: string,
    label: string,
    caption: string,
    execute: (args: ReadonlyPartialJSONObject) => Promise<unknown>
  ): void => {
    commands.addCommand(id, {
      label: args => (args.label as string | undefined) ?? label,
      caption,
      execute: args => execute(args).catch(reportError)
    });
    palette?.addItem({ command: id, category: CATEGORY });
  };

  /** The deployment of the command's `name`, else one the user picks. */
  const deploymentOf = async (
    args: ReadonlyPartialJSONObject,
    title: string,
    filter: (name: string) => boolean = () => true
  ): Promise<string | null> => {
    if (typeof args.name === 'string') {
      return args.name;
    }
    const names = deployments.deployments.map(d => d.name).filter(filter);
    if (names.length === 0) {
      Notification.info('ModelHub: no deployment to choose from.', {
        autoClose: 5000
      });
      return null;
    }
    return pick(title, 'Deployment', names);
  };

  /** The model of the command's `model`, else one the user picks. */
  const modelOf = async (
    args: ReadonlyPartialJSONObject,
    title: string
  ): Promise<string | null> => {
    if (typeof args.model === 'string') {
      return args.model;
    }
    const names = models.models.map(m => m.name);
    if (names.length === 0) {
      Notification.info('ModelHub: no model is registered yet.', {
        autoClose: 5000
      });
      return null;
    }
    return pick(title, 'Model', names);
  };

  add(
    CommandIDs.registerModel,
    'ModelHub: Register model from file…',
    'Register a file of the server as a new version of a model',
    async args => {
      const value = await showForm(
        'Register a model from a file',
        [
          {
            key: 'path',
            label: 'File (relative to the server root)',
            kind: 'text',
            value: (args.path as string | undefined) ?? '',
            placeholder: 'models/fraud.joblib'
          },
          {
            key: 'name',
            label: 'Model name',
            kind: 'text',
            value: (args.model as string | undefined) ?? '',
            placeholder: 'fraud'
          },
          { key: 'description', label: 'Description', kind: 'text' },
          {
            key: 'sample',
            label: 'Sample inputs, CSV or Parquet (optional: the signature)',
            kind: 'text',
            placeholder: 'data/sample.csv'
          },
          {
            key: 'reference',
            label: 'Training features, CSV or Parquet (optional: for drift)',
            kind: 'text',
            placeholder: 'data/train.parquet'
          }
        ],
        'Register'
      );
      if (value === null) {
        return;
      }
      const request = {
        path: value.path,
        name: value.name,
        ...(value.description ? { description: value.description } : {}),
        ...(value.sample ? { sample: value.sample } : {}),
        ...(value.reference ? { reference: value.reference } : {})
      };
      await progress(
        models.registerModel(request),
        `Registering ${value.path} as ${value.name}…`,
        version => `Registered ${version.tag}.`
      );
    }
  );

  add(
    CommandIDs.promoteVersion,
    'ModelHub: Promote model version…',
    'Put a version of a model into a stage',
    async args => {
      const model = await modelOf(args, 'Promote which model?');
      if (model === null) {
        return;
      }
      const detail = await models.getModel(model);
      const value = await showForm(
        `Promote a version of ${model}`,
        [
          {
            key: 'version',
            label: 'Version',
            kind: 'select',
            options: detail.versions.map(v => ({
              value: v.meta.version,
              label: v.meta.version
            })),
            value: (args.version as string | undefined) ?? undefined
          },
          {
            key: 'stage',
            label: 'Stage',
            kind: 'text',
            value: (args.stage as string | undefined) ?? 'prod'
          }
        ],
        'Promote'
      );
      if (value === null) {
        return;
      }
      const holder = detail.stages[value.stage];
      const replaces = holder ? ` (it replaces ${holder})` : '';
      if (
        !(await confirm(
          'Promote',
          `Put ${model} ${value.version} into ${value.stage}${replaces}?`,
          'Promote'
        ))
      ) {
        return;
      }
      await progress(
        models.promote(model, { version: value.version, stage: value.stage }),
        `Promoting ${model} ${value.version} to ${value.stage}…`,
        () => `${model} ${value.version} is now ${value.stage}.`
      );
    }
  );

  add(
    CommandIDs.demoteStage,
    'ModelHub: Demote model stage…',
    'Take a stage away from the version of a model that holds it',
    async args => {
      const model = await modelOf(args, 'Demote a stage of which model?');
      if (model === null) {
        return;
      }
      let stage = args.stage as string | undefined;
      const detail = await models.getModel(model);
      if (stage === undefined) {
        const stages = Object.keys(detail.stages);
        if (stages.length === 0) {
          Notification.info(`ModelHub: ${model} holds no stage.`, {
            autoClose: 5000
          });
          return;
        }
        stage = (await pick(`Demote a stage of ${model}`, 'Stage', stages))!;
        if (stage === null) {
          return;
        }
      }
      const version = detail.stages[stage] ?? 'its version';
      if (
        !(await confirm(
          'Demote',
          `Take the stage ${stage} away from ${model} ${version}?`,
          'Demote'
        ))
      ) {
        return;
      }
      await progress(
        models.demote(model, stage),
        `Demoting ${model} from ${stage}…`,
        () => `${model} ${version} left ${stage}.`
      );
    }
  );

  add(
    CommandIDs.deploy,
    'ModelHub: Deploy model…',
    'Deploy a version (or stage) of a registered model',
    async args => {
      const model = await modelOf(args, 'Deploy which model?');
      if (model === null) {
        return;
      }
      const [detail, targets] = await Promise.all([
        models.getModel(model),
        deployments.targets()
      ]);
      const value = await showForm(
        `Deploy ${model}`,
        deployFields(model, refChoices(detail), targets),
        'Deploy'
      );
      if (value === null) {
        return;
      }
      const request = deployRequest(model, value);
      await progress(
        deployments.deploy(request),
        `Deploying ${value.ref} as ${request.name} (${value.target})…`,
        status =>
          `${status.name} serves ${status.serving_version} at ${status.endpoint}.`
      );
    }
  );

  add(
    CommandIDs.update,
    'ModelHub: Update deployment…',
    'Roll a deployment to another version without downtime',
    async args => {
      const name = await deploymentOf(args, 'Update which deployment?');
      if (name === null) {
        return;
      }
      const status = deployments.deployments.find(d => d.name === name);
      const detail = await models.getModel(status?.model ?? name);
      const choices = refChoices(detail).filter(
        c => c.value !== `${detail.name}@${status?.desired_version}`
      );
      const version = await pick(
        `Update ${name} (serving ${status?.serving_version ?? '—'})`,
        'Version',
        choices.map(c => c.label)
      );
      if (version === null) {
        return;
      }
      const ref = choices.find(c => c.label === version)!.value;
      await progress(
        deployments.update(name, ref),
        `Updating ${name} to ${ref}…`,
        s => `${s.name} serves ${s.serving_version} (revision ${s.revision}).`
      );
    }
  );

  add(
    CommandIDs.rollback,
    'ModelHub: Roll back deployment…',
    'Go back to an earlier revision of a deployment',
    async args => {
      const name = await deploymentOf(args, 'Roll back which deployment?');
      if (name === null) {
        return;
      }
      const revisions = (await deployments.revisions(name)).slice(0, -1);
      if (revisions.length === 0) {
        Notification.info(`ModelHub: ${name} has no earlier revision.`, {
          autoClose: 5000
        });
        return;
      }
      const labels = revisions
        .reverse()
        .map(
          r =>
            `revision ${r.revision}: ${r.spec.version}, ${r.spec.replicas} replica(s) — ${r.time}`
        );
      const label = await pick(`Roll back ${name}`, 'Revision', labels);
      if (label === null) {
        return;
      }
      const revision = revisions[labels.indexOf(label)].revision;
      await progress(
        deployments.rollback(name, revision),
        `Rolling ${name} back to revision ${revision}…`,
        s => `${s.name} serves ${s.serving_version} (revision ${s.revision}).`
      );
    }
  );

  add(
    CommandIDs.stop,
    'ModelHub: Stop deployment…',
    'Stop a deployment and its replicas',
    async args => {
      const name = await deploymentOf(args, 'Stop which deployment?');
      if (name === null) {
        return;
      }
      if (
        !(await confirm(
          'Stop deployment',
          `Stop ${name}? Its endpoint stops answering.`,
          'Stop'
        ))
      ) {
        return;
      }
      await progress(
        deployments.stop(name),
        `Stopping ${name}…`,
        () => `${name} is stopped.`
      );
    }
  );

  const dashboard = (kind: DashboardKind, label: string) => {
    add(
      kind === 'monitor' ? CommandIDs.openMonitor : CommandIDs.openDrift,
      `ModelHub: Open ${label}…`,
      `Run %modelhub ${kind} NAME in the active notebook (or a new one)`,
      async args => {
        const name = await deploymentOf(
          args,
          `Open the ${label} of which deployment?`
        );
        if (name !== null) {
          await openDashboard(app, tracker, kind, name);
        }
      }
    );
  };
  dashboard('monitor', 'monitor dashboard');
  dashboard('drift', 'drift dashboard');

  const running = (name: string) =>
    deployments.deployments.find(d => d.name === name)?.traffic?.state ===
    'running';

  add(
    CommandIDs.startExperiment,
    'ModelHub: Start experiment…',
    'Start an A/B split, canary, blue-green or shadow experiment on a deployment',
    async args => {
      const name = await deploymentOf(
        args,
        'Experiment on which deployment?',
        n => !running(n)
      );
      if (name === null) {
        return;
      }
      const status = deployments.deployments.find(d => d.name === name);
      const detail = await models.getModel(status?.model ?? name);
      const challengers = refChoices(detail).filter(
        c => c.value !== `${detail.name}@${status?.desired_version}`
      );
      const value = await showForm(
        `Start an experiment on ${name}`,
        experimentFields(challengers),
        'Start'
      );
      if (value === null) {
        return;
      }
      const request = experimentRequest(value);
      await progress(
        deployments.startExperiment(name, request),
        `Starting a ${value.kind} of ${value.challenger} on ${name}…`,
        () => `The ${value.kind} on ${name} is running.`
      );
    }
  );

  add(
    CommandIDs.stopExperiment,
    'ModelHub: Stop experiment…',
    "End a deployment's experiment: all traffic back to the champion",
    async args => {
      const name = await deploymentOf(
        args,
        'Stop the experiment of which deployment?',
        running
      );
      if (name === null) {
        return;
      }
      if (
        !(await confirm(
          'Stop experiment',
          `End the experiment on ${name}? All traffic goes back to the champion.`,
          'Stop experiment'
        ))
      ) {
        return;
      }
      await progress(
        deployments.stopExperiment(name),
        `Stopping the experiment on ${name}…`,
        () => `The experiment on ${name} ended.`
      );
    }
  );

  add(
    CommandIDs.promoteExperiment,
    'ModelHub: Promote experiment challenger…',
    "Make an experiment's challenger the deployment's champion",
    async args => {
      const name = await deploymentOf(
        args,
        'Promote the challenger of which deployment?',
        running
      );
      if (name === null) {
        return;
      }
      const traffic = deployments.deployments.find(
        d => d.name === name
      )?.traffic;
      const challengers = Object.values(traffic?.challengers ?? {}).join(', ');
      if (
        !(await confirm(
          'Promote challenger',
          `Make ${challengers || 'the challenger'} the champion of ${name}?`,
          'Promote'
        ))
      ) {
        return;
      }
      await progress(
        deployments.promoteExperiment(name),
        `Promoting the challenger of ${name}…`,
        s => `${s.name} serves ${s.serving_version}.`
      );
    }
  );

  add(
    CommandIDs.advanceExperiment,
    'ModelHub: Advance canary',
    'Move a canary to its next step now',
    async args => {
      const name = await deploymentOf(
        args,
        'Advance the canary of which deployment?',
        n =>
          running(n) &&
          deployments.deployments.find(d => d.name === n)?.traffic?.kind ===
            'canary'
      );
      if (name === null) {
        return;
      }
      await progress(
        deployments.advanceExperiment(name),
        `Advancing the canary of ${name}…`,
        () => `The canary of ${name} moved to its next step.`
      );
    }
  );
}

/**
 * The references a user can deploy of a model: its stages, then its versions (newest first).
 */
function refChoices(detail: IModelDetail): { value: string; label: string }[] {
  const stages = Object.entries(detail.stages).map(([stage, version]) => ({
    value: `${detail.name}#${stage}`,
    label: `stage ${stage} (${version})`
  }));
  const versions = detail.versions.map(v => ({
    value: `${detail.name}@${v.meta.version}`,
    label: v.meta.version
  }));
  return [...stages, ...versions];
}

/**
 * Ask the user to choose one item.
 */
async function pick(
  title: string,
  label: string,
  items: string[]
): Promise<string | null> {
  const result = await InputDialog.getItem({ title, label, items });
  return result.button.accept ? result.value : null;
}

/**
 * Wait for a long operation (the sidebar shows its progress on the deployment's row), then
 * notify its result, or the server's message when it failed.
 *
 * @param pending What runs, for the console while waiting.
 */
async function progress<T>(
  promise: Promise<T>,
  pending: string,
  success: (value: T) => string
): Promise<T | undefined> {
  console.debug(`ModelHub: ${pending}`);
  let value: T;
  try {
    value = await promise;
  } catch (reason) {
    reportError(reason);
    return undefined;
  }
  Notification.success(`ModelHub: ${success(value)}`, { autoClose: 5000 });
  return value;
}

/**
 * Report an error raised before the server was called (e.g. fetching a dialog's choices).
 */
function reportError(reason: unknown): void {
  const message = reason instanceof Error ? reason.message : String(reason);
  Notification.error(`ModelHub: ${message}`, { autoClose: false });
}
