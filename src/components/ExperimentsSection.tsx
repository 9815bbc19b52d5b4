import { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { CommandIDs } from '../commands';
import {
  IDeploymentStatus,
  IDeploymentsModel,
  IExperimentVerdict
} from '../tokens';
import { ActionButton } from './ActionButton';

/**
 * Names of the experiment kinds, as the user reads them.
 */
const KIND_LABELS: Record<string, string> = {
  split: 'A/B split',
  canary: 'canary',
  bluegreen: 'blue-green',
  shadow: 'shadow'
};

/**
 * Properties of the experiments section.
 */
export interface IExperimentsSectionProps {
  deployments: IDeploymentsModel;
  commands: CommandRegistry;
}

/**
 * The "Experiments" section: the running experiments with the server's current verdict.
 */
export function ExperimentsSection(
  props: IExperimentsSectionProps
): JSX.Element {
  const { deployments, commands } = props;
  const running = deployments.deployments.filter(
    d => d.traffic?.state === 'running'
  );
  return (
    <section className="jp-ModelHub-section" aria-label="Experiments">
      <div className="jp-ModelHub-sectionHeader">
        <h3 className="jp-ModelHub-sectionTitle">Experiments</h3>
        <ActionButton
          commands={commands}
          command={CommandIDs.startExperiment}
          label="Start…"
          ariaLabel="Start an experiment"
          disabled={deployments.deployments.length === 0}
        />
      </div>
      {running.length === 0 ? (
        <div className="jp-ModelHub-empty" role="status">
          No experiment is running.
        </div>
      ) : (
        <ul className="jp-ModelHub-experimentList" aria-label="Experiments">
          {running.map(status => (
            <ExperimentRow
              key={status.name}
              status={status}
              busy={deployments.isBusy(status.name)}
              verdict={deployments.verdict(status.name)}
              commands={commands}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * Properties of one experiment row.
 */
interface IExperimentRowProps {
  status: IDeploymentStatus;
  busy: boolean;
  verdict: IExperimentVerdict | null;
  commands: CommandRegistry;
}

/**
 * One running experiment: kind, champion against challengers, step, verdict and actions.
 */
function ExperimentRow(props: IExperimentRowProps): JSX.Element {
  const { status, busy, verdict, commands } = props;
  const traffic = status.traffic!;
  const args = { name: status.name };
  const challengers = Object.values(traffic.challengers).join(', ');
  const steps = traffic.steps ?? [];
  return (
    <li
      className="jp-ModelHub-experimentRow"
      data-deployment-name={status.name}
      data-kind={traffic.kind}
      aria-busy={busy}
    >
      <div className="jp-ModelHub-deploymentHeader">
        <span className="jp-ModelHub-deploymentName">{status.name}</span>
        <span className="jp-ModelHub-trafficKind">
          {KIND_LABELS[traffic.kind] ?? traffic.kind}
        </span>
        {busy && (
          <span
            className="jp-ModelHub-spinner"
            role="progressbar"
            aria-label={`Working on ${status.name}`}
          />
        )}
      </div>
      <div className="jp-ModelHub-deploymentMeta">
        <span>
          {status.serving_version ?? status.desired_version} vs {challengers}
        </span>
        {traffic.kind === 'canary' && steps.length > 0 && (
          <span className="jp-ModelHub-canaryStep">
            step {(traffic.step ?? 0) + 1}/{steps.length}
          </span>
        )}
      </div>
      <div className="jp-ModelHub-verdict" aria-live="polite">
        {verdict === null
          ? 'Waiting for a verdict…'
          : verdict.lines.map(line => <div key={line}>{line}</div>)}
      </div>
      <div
        className="jp-ModelHub-actions"
        role="toolbar"
        aria-label={`Experiment actions on ${status.name}`}
      >
        <ActionButton
          commands={commands}
          command={CommandIDs.promoteExperiment}
          args={args}
          label="Promote"
          ariaLabel={`Make the challenger of ${status.name} the champion`}
          disabled={busy}
        />
        {traffic.kind === 'canary' && (
          <ActionButton
            commands={commands}
            command={CommandIDs.advanceExperiment}
            args={args}
            label="Advance"
            ariaLabel={`Move the canary of ${status.name} to its next step`}
            disabled={busy}
          />
        )}
        <ActionButton
          commands={commands}
          command={CommandIDs.stopExperiment}
          args={args}
          label="Stop"
          ariaLabel={`Stop the experiment on ${status.name}`}
          disabled={busy}
          className="jp-mod-warn"
        />
      </div>
    </li>
  );
}
