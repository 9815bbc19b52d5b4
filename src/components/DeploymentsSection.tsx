import { CommandRegistry } from '@lumino/commands';
import React from 'react';

import { CommandIDs } from '../commands';
import {
  IDeploymentStatus,
  IDeploymentsModel,
  IDriftSummary,
  IHealthSample
} from '../tokens';
import { ActionButton } from './ActionButton';
import { Sparkline } from './Sparkline';

/**
 * Properties of the deployments section.
 */
export interface IDeploymentsSectionProps {
  deployments: IDeploymentsModel;
  commands: CommandRegistry;
}

/**
 * The "Deployments" section: each deployment with its state, health and actions.
 */
export function DeploymentsSection(
  props: IDeploymentsSectionProps
): JSX.Element {
  const { deployments, commands } = props;
  const known = new Set(deployments.deployments.map(d => d.name));
  const starting = deployments.busy.filter(name => !known.has(name));
  return (
    <section className="jp-ModelHub-section" aria-label="Deployments">
      <div className="jp-ModelHub-sectionHeader">
        <h3 className="jp-ModelHub-sectionTitle">Deployments</h3>
        <ActionButton
          commands={commands}
          command={CommandIDs.deploy}
          label="Deploy…"
          ariaLabel="Deploy a model"
          className="jp-ModelHub-deployButton"
        />
      </div>
      {deployments.error !== null && (
        <div className="jp-ModelHub-error" role="alert">
          {deployments.error}
        </div>
      )}
      {!deployments.loaded && (
        <div className="jp-ModelHub-loading" role="status">
          Loading deployments…
        </div>
      )}
      {deployments.loaded &&
        deployments.error === null &&
        deployments.deployments.length === 0 &&
        starting.length === 0 && (
          <div className="jp-ModelHub-empty" role="status">
            Nothing is deployed.
          </div>
        )}
      {deployments.deployments.length > 0 && (
        <ul className="jp-ModelHub-deploymentList" aria-label="Deployments">
          {deployments.deployments.map(status => (
            <DeploymentRow
              key={status.name}
              status={status}
              busy={deployments.isBusy(status.name)}
              drift={deployments.drift(status.name)}
              health={deployments.health(status.name)}
              commands={commands}
            />
          ))}
        </ul>
      )}
      {starting.map(name => (
        <div
          key={name}
          className="jp-ModelHub-pending"
          role="status"
          data-deployment-name={name}
        >
          <span className="jp-ModelHub-spinner" aria-hidden="true" />
          Deploying {name}…
        </div>
      ))}
    </section>
  );
}

/**
 * Properties of one deployment row.
 */
interface IDeploymentRowProps {
  status: IDeploymentStatus;
  busy: boolean;
  drift: IDriftSummary | null;
  health: ReadonlyArray<IHealthSample>;
  commands: CommandRegistry;
}

/**
 * One deployment: name, target, phase, replicas, version, traffic, live health and drift.
 */
function DeploymentRow(props: IDeploymentRowProps): JSX.Element {
  const { status, busy, drift, health, commands } = props;
  const ready = status.replicas.filter(r => r.health === 'ready').length;
  const args = { name: status.name };
  const latest = health.length > 0 ? health[health.length - 1] : null;
  const traffic = status.traffic?.state === 'running' ? status.traffic : null;
  return (
    <li
      className="jp-ModelHub-deploymentRow"
      data-deployment-name={status.name}
      data-phase={status.phase}
      aria-busy={busy}
    >
      <div className="jp-ModelHub-deploymentHeader">
        <span className="jp-ModelHub-deploymentName">{status.name}</span>
        <span className="jp-ModelHub-target" title="Deployment target">
          {status.target}
        </span>
        <span
          className="jp-ModelHub-phase"
          data-phase={status.phase}
          title={status.last_error ?? `Phase: ${status.phase}`}
        >
          {status.phase}
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
        <span className="jp-ModelHub-deploymentVersion" title={status.ref}>
          {status.model} {status.serving_version ?? status.desired_version}
        </span>
        <span
          className="jp-ModelHub-replicas"
          aria-label={`${ready} of ${status.desired_replicas} replicas ready`}
        >
          {ready}/{status.desired_replicas} ready
        </span>
        <span className="jp-ModelHub-revision">rev {status.revision}</span>
        <DriftBadge drift={drift} />
      </div>
      {status.controller && (
        <div
          className="jp-ModelHub-controller"
          title="The process that runs the experiment's guardrails and canary steps"
        >
          controller: {status.controller}
        </div>
      )}
      {traffic !== null && (
        <div className="jp-ModelHub-traffic" aria-label="Traffic split">
          {Object.entries(traffic.weights).map(([variant, weight]) => (
            <span key={variant} className="jp-ModelHub-trafficShare">
              {variant === 'champion'
                ? (status.serving_version ?? 'champion')
                : (traffic.challengers[variant] ?? variant)}{' '}
              {Math.round(weight * 100)}%
            </span>
          ))}
          <span className="jp-ModelHub-trafficKind">{traffic.kind}</span>
        </div>
      )}
      {status.phase !== 'stopped' && (
        <div className="jp-ModelHub-health">
          <Sparkline
            label="Requests per second"
            values={health.map(h => h.requestsPerSecond)}
            latest={
              latest === null
                ? '— req/s'
                : `${latest.requestsPerSecond.toFixed(1)} req/s`
            }
          />
          <Sparkline
            label="Median latency"
            values={health.map(h =>
              h.p50Latency === null ? null : h.p50Latency * 1000
            )}
            latest={
              latest?.p50Latency === null || latest === null
                ? '— ms p50'
                : `${(latest.p50Latency * 1000).toFixed(1)} ms p50`
            }
          />
        </div>
      )}
      {status.last_error && (
        <div className="jp-ModelHub-lastError">{status.last_error}</div>
      )}
      <div
        className="jp-ModelHub-actions"
        role="toolbar"
        aria-label={`Actions on ${status.name}`}
      >
        <ActionButton
          commands={commands}
          command={CommandIDs.update}
          args={args}
          label="Update"
          ariaLabel={`Update ${status.name} to another version`}
          disabled={busy}
        />
        <ActionButton
          commands={commands}
          command={CommandIDs.rollback}
          args={args}
          label="Roll back"
          ariaLabel={`Roll back ${status.name}`}
          disabled={busy || status.revision < 2}
        />
        <ActionButton
          commands={commands}
          command={CommandIDs.openMonitor}
          args={args}
          label="Monitor"
          ariaLabel={`Open the monitor dashboard of ${status.name}`}
        />
        <ActionButton
          commands={commands}
          command={CommandIDs.openDrift}
          args={args}
          label="Drift"
          ariaLabel={`Open the drift dashboard of ${status.name}`}
        />
        <ActionButton
          commands={commands}
          command={CommandIDs.stop}
          args={args}
          label="Stop"
          ariaLabel={`Stop ${status.name}`}
          disabled={busy}
          className="jp-mod-warn"
        />
      </div>
    </li>
  );
}

/**
 * The dataset-level drift verdict: "drift", "no drift" or "no data".
 */
function DriftBadge(props: { drift: IDriftSummary | null }): JSX.Element {
  const { drift } = props;
  if (drift === null) {
    return (
      <span className="jp-ModelHub-driftBadge" data-state="unknown">
        drift …
      </span>
    );
  }
  const text = {
    drift: `drift ${drift.n_drifted}/${drift.n_features}`,
    ok: `no drift ${drift.n_drifted}/${drift.n_features}`,
    no_data: 'drift: no data'
  }[drift.state];
  return (
    <span
      className="jp-ModelHub-driftBadge"
      data-state={drift.state}
      title={drift.message}
    >
      {text}
    </span>
  );
}
