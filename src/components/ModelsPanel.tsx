import { Notification } from '@jupyterlab/apputils';
import { ReactWidget, refreshIcon, UseSignal } from '@jupyterlab/ui-components';
import { CommandRegistry } from '@lumino/commands';
import { Message } from '@lumino/messaging';
import React, { useEffect, useRef, useState } from 'react';

import { CommandIDs } from '../commands';
import {
  IDeploymentsModel,
  IHubInfo,
  IModelDetail,
  IModelHubModel,
  IModelSummary,
  IModelVersion,
  StageAssignments
} from '../tokens';
import { ActionButton } from './ActionButton';
import { DeploymentsSection } from './DeploymentsSection';
import { ExperimentsSection } from './ExperimentsSection';

/**
 * The command a user types in a notebook to register a model.
 */
const REGISTER_HINT = '%modelhub register model --name NAME';

/**
 * The ModelHub sidebar panel: the models, deployments and experiments sections.
 */
export class ModelsPanel extends ReactWidget {
  constructor(options: ModelsPanel.IOptions) {
    super();
    this.model = options.model;
    this.deployments = options.deployments ?? null;
    this.commands = options.commands ?? new CommandRegistry();
    this.addClass('jp-ModelHub');
    this.model.errorRaised.connect(this._onErrorRaised, this);
    this.deployments?.errorRaised.connect(this._onErrorRaised, this);
  }

  readonly model: IModelHubModel;
  readonly deployments: IDeploymentsModel | null;
  readonly commands: CommandRegistry;

  dispose(): void {
    if (this.isDisposed) {
      return;
    }
    this.model.errorRaised.disconnect(this._onErrorRaised, this);
    this.deployments?.errorRaised.disconnect(this._onErrorRaised, this);
    super.dispose();
  }

  protected onAfterShow(msg: Message): void {
    super.onAfterShow(msg);
    void this.model.refresh();
    void this.deployments?.refresh();
    this.model
      .getHub()
      .then(hub => {
        this._hub = hub;
        this.update();
      })
      .catch(() => {
        // The model list reports the server's errors.
      });
  }

  protected render(): JSX.Element {
    const { deployments, commands } = this;
    return (
      <div className="jp-ModelHub-content">
        <header className="jp-ModelHub-header">
          <h2 className="jp-ModelHub-title">ModelHub</h2>
          {this._hub !== null && (
            <span
              className="jp-ModelHub-hubPath"
              title={`The Jupyter server serves the hub at ${this._hub.path}${
                this._hub.exists ? '' : ' (not created yet)'
              }`}
            >
              {this._hub.path}
            </span>
          )}
          <button
            type="button"
            className="jp-ModelHub-iconButton jp-ModelHub-refreshButton"
            title="Refresh models and deployments"
            aria-label="Refresh models and deployments"
            onClick={() => {
              void this.model.refresh();
              void deployments?.refresh();
            }}
          >
            <refreshIcon.react tag="span" elementSize="normal" />
          </button>
        </header>
        <UseSignal signal={this.model.changed}>
          {() => <ModelsView model={this.model} commands={commands} />}
        </UseSignal>
        {deployments !== null && (
          <UseSignal signal={deployments.changed}>
            {() => (
              <>
                <DeploymentsSection
                  deployments={deployments}
                  commands={commands}
                />
                <ExperimentsSection
                  deployments={deployments}
                  commands={commands}
                />
              </>
            )}
          </UseSignal>
        )}
      </div>
    );
  }

  private _onErrorRaised(sender: unknown, error: Error): void {
    // A hub that is gone fails both lists with one message: notify it once.
    const other = sender === this.model ? this.deployments : this.model;
    if (other?.error === error.message) {
      return;
    }
    Notification.error(`ModelHub: ${error.message}`, { autoClose: 8000 });
  }

  private _hub: IHubInfo | null = null;
}

/**
 * A namespace for ModelsPanel statics.
 */
export namespace ModelsPanel {
  /**
   * Options of a ModelsPanel.
   */
  export interface IOptions {
    model: IModelHubModel;
    /** The deployments and experiments sections show when given. */
    deployments?: IDeploymentsModel;
    /** Where the action buttons' commands live. */
    commands?: CommandRegistry;
  }
}

/**
 * Properties of the models view.
 */
interface IModelsViewProps {
  model: IModelHubModel;
  commands: CommandRegistry;
}

/**
 * The "Models" section: filter, and the models with their versions.
 */
export function ModelsView(props: IModelsViewProps): JSX.Element {
  const { model, commands } = props;
  const [filter, setFilter] = useState('');
  const needle = filter.trim().toLowerCase();
  const models = model.models.filter(
    item => needle === '' || item.name.toLowerCase().includes(needle)
  );

  return (
    <section className="jp-ModelHub-section" aria-label="Models">
      <div className="jp-ModelHub-sectionHeader">
        <h3 className="jp-ModelHub-sectionTitle">Models</h3>
        <ActionButton
          commands={commands}
          command={CommandIDs.registerModel}
          label="Register…"
          ariaLabel="Register a model from a file"
        />
      </div>
      <input
        type="search"
        className="jp-ModelHub-filter jp-mod-styled"
        placeholder="Filter models by name"
        aria-label="Filter models by name"
        value={filter}
        onChange={event => setFilter(event.target.value)}
      />
      {model.error !== null && (
        <div className="jp-ModelHub-error" role="alert">
          {model.error}
        </div>
      )}
      {!model.loaded && (
        <div className="jp-ModelHub-loading" role="status">
          Loading models…
        </div>
      )}
      {model.loaded && model.error === null && model.models.length === 0 && (
        <div className="jp-ModelHub-empty" role="status">
          <p>No model is registered yet.</p>
          <p>
            Register one from a notebook cell with:
            <code className="jp-ModelHub-code">{REGISTER_HINT}</code>
          </p>
        </div>
      )}
      {model.models.length > 0 && models.length === 0 && (
        <div className="jp-ModelHub-empty" role="status">
          No model matches “{filter.trim()}”.
        </div>
      )}
      {models.length > 0 && (
        <ul className="jp-ModelHub-modelList" aria-label="Registered models">
          {models.map(item => (
            <ModelRow
              key={item.name}
              model={model}
              summary={item}
              commands={commands}
            />
          ))}
        </ul>
      )}
    </section>
  );
}

/**
 * Properties of one model row.
 */
interface IModelRowProps {
  model: IModelHubModel;
  summary: IModelSummary;
  commands: CommandRegistry;
}

/**
 * One model of the list; expands to show its versions.
 */
const ModelRow = React.memo(ModelRowView, (before, after) => {
  const a = before.summary;
  const b = after.summary;
  return (
    before.model === after.model &&
    before.commands === after.commands &&
    a.name === b.name &&
    a.latest === b.latest &&
    a.versions === b.versions &&
    a.updated === b.updated &&
    a.deprecated === b.deprecated &&
    JSON.stringify(a.stages) === JSON.stringify(b.stages)
  );
});

function ModelRowView(props: IModelRowProps): JSX.Element {
  const { model, summary, commands } = props;
  const [expanded, setExpanded] = useState(false);
  const detailsId = `jp-ModelHub-details-${cssIdentifier(summary.name)}`;
  const versionCount = `${summary.versions} ${
    summary.versions === 1 ? 'version' : 'versions'
  }`;

  return (
    <li
      className={`jp-ModelHub-modelRow${
        summary.deprecated ? ' jp-mod-deprecated' : ''
      }`}
      data-model-name={summary.name}
    >
      <button
        type="button"
        className="jp-ModelHub-modelToggle"
        aria-expanded={expanded}
        aria-controls={detailsId}
        title={
          summary.updated ? `Last updated ${summary.updated}` : summary.name
        }
        onClick={() => setExpanded(!expanded)}
      >
        {/* A CSS triangle: a LabIcon per row costs more than the row itself. */}
        <span className="jp-ModelHub-caret" aria-hidden="true" />
        <span className="jp-ModelHub-modelName">{summary.name}</span>
        <span
          className="jp-ModelHub-modelLatest"
          aria-label={`latest version ${summary.latest ?? 'none'}`}
        >
          {summary.latest ?? '—'}
        </span>
      </button>
      <div className="jp-ModelHub-modelMeta">
        <span className="jp-ModelHub-versionCount">{versionCount}</span>
        <StageBadges stages={summary.stages} deprecated={summary.deprecated} />
      </div>
      {expanded && (
        <ModelDetails
          id={detailsId}
          model={model}
          name={summary.name}
          commands={commands}
        />
      )}
    </li>
  );
}

/**
 * Properties of the stage badges.
 */
interface IStageBadgesProps {
  stages: StageAssignments;
  deprecated?: boolean;
}

/**
 * Badges such as "prod: v0.0.2", one per assigned stage.
 */
function StageBadges(props: IStageBadgesProps): JSX.Element | null {
  const entries = Object.entries(props.stages);
  if (entries.length === 0 && !props.deprecated) {
    return null;
  }
  return (
    <div className="jp-ModelHub-badges">
      {entries.map(([stage, version]) => (
        <span
          key={stage}
          className="jp-ModelHub-stageBadge"
          data-stage={stage}
          data-version={version}
        >
          {stage}: {version}
        </span>
      ))}
      {props.deprecated && (
        <span className="jp-ModelHub-deprecatedBadge">deprecated</span>
      )}
    </div>
  );
}

/**
 * Properties of the details of one model.
 */
interface IModelDetailsProps {
  id: string;
  model: IModelHubModel;
  name: string;
  commands: CommandRegistry;
}

/**
 * The versions of one model, fetched when the row is expanded.
 */
function ModelDetails(props: IModelDetailsProps): JSX.Element {
  const { id, model, name, commands } = props;
  const [detail, setDetail] = useState<IModelDetail | null>(null);
  const [error, setError] = useState<string | null>(null);
  const lastError = useRef<string | null>(null);

  useEffect(() => {
    let cancelled = false;
    model
      .getModel(name)
      .then(value => {
        if (!cancelled) {
          lastError.current = null;
          setDetail(value);
          setError(null);
        }
      })
      .catch((reason: Error) => {
        if (!cancelled) {
          setError(reason.message);
          if (reason.message !== lastError.current) {
            Notification.error(`ModelHub: ${reason.message}`, {
              autoClose: 8000
            });
          }
          lastError.current = reason.message;
        }
      });
    return () => {
      cancelled = true;
    };
    // Fetch again whenever the model list was refreshed.
  }, [model, name, model.models]);

  return (
    <div id={id} className="jp-ModelHub-details">
      {error !== null && (
        <div className="jp-ModelHub-error" role="alert">
          {error}
        </div>
      )}
      {detail === null && error === null && (
        <div className="jp-ModelHub-loading" role="status">
          Loading versions…
        </div>
      )}
      {detail !== null && (
        <ul
          className="jp-ModelHub-versionList"
          aria-label={`Versions of ${name}`}
        >
          {/* In the server's order: newest first. */}
          {detail.versions.map(version => (
            <VersionRow
              key={version.tag}
              version={version}
              commands={commands}
            />
          ))}
        </ul>
      )}
    </div>
  );
}

/**
 * One version of a model.
 */
function VersionRow(props: {
  version: IModelVersion;
  commands: CommandRegistry;
}): JSX.Element {
  const { version, commands } = props;
  const { meta } = version;
  const metrics = Object.entries(meta.metrics ?? {});
  const stages: StageAssignments = {};
  for (const stage of version.stages) {
    stages[stage] = meta.version;
  }
  return (
    <li
      className={`jp-ModelHub-versionRow${
        version.deprecated ? ' jp-mod-deprecated' : ''
      }`}
      data-version={meta.version}
    >
      <div className="jp-ModelHub-versionHeader">
        <span className="jp-ModelHub-versionName">{meta.version}</span>
        {meta.flavor && (
          <span className="jp-ModelHub-flavor">{meta.flavor}</span>
        )}
        <span className="jp-ModelHub-commit" title={version.commit}>
          {version.commit.slice(0, 7)}
        </span>
      </div>
      <StageBadges stages={stages} deprecated={version.deprecated} />
      {meta.description && (
        <div className="jp-ModelHub-description">{meta.description}</div>
      )}
      <SignatureAndLineage meta={meta} />
      {metrics.length > 0 && (
        <dl className="jp-ModelHub-metrics">
          {metrics.map(([key, value]) => (
            <React.Fragment key={key}>
              <dt>{key}</dt>
              <dd>{String(value)}</dd>
            </React.Fragment>
          ))}
        </dl>
      )}
      <div
        className="jp-ModelHub-actions"
        role="toolbar"
        aria-label={`Actions on ${meta.name} ${meta.version}`}
      >
        <ActionButton
          commands={commands}
          command={CommandIDs.promoteVersion}
          args={{ model: meta.name, version: meta.version }}
          label="Promote…"
          ariaLabel={`Promote ${meta.name} ${meta.version} to a stage`}
        />
        {version.stages.map(stage => (
          <ActionButton
            key={stage}
            commands={commands}
            command={CommandIDs.demoteStage}
            args={{ model: meta.name, stage }}
            label={`Demote ${stage}`}
            ariaLabel={`Take ${stage} away from ${meta.name} ${meta.version}`}
            className="jp-mod-warn"
          />
        ))}
        <ActionButton
          commands={commands}
          command={CommandIDs.deploy}
          args={{ model: meta.name }}
          label="Deploy…"
          ariaLabel={`Deploy ${meta.name}`}
        />
      </div>
    </li>
  );
}

/**
 * How many inputs of a signature are listed before "… N more".
 */
const SHOWN_INPUTS = 8;

/**
 * The signature and lineage of a version, in a disclosure (closed by default).
 */
function SignatureAndLineage(props: {
  meta: IModelVersion['meta'];
}): JSX.Element | null {
  const { signature, lineage } = props.meta;
  const inputs = signature?.inputs ?? [];
  const origin: [string, string][] = [];
  for (const [key, value] of Object.entries(lineage ?? {})) {
    if (value === null || value === '') {
      continue;
    }
    if (typeof value === 'object') {
      // e.g. environment: package name to version
      const entries = Object.entries(value as Record<string, unknown>);
      if (entries.length > 0) {
        origin.push([key, entries.map(([k, v]) => `${k} ${v}`).join(', ')]);
      }
    } else {
      origin.push([key, String(value)]);
    }
  }
  if (inputs.length === 0 && origin.length === 0) {
    return null;
  }
  return (
    <details className="jp-ModelHub-provenance">
      <summary>Signature and lineage</summary>
      {inputs.length > 0 && (
        <div className="jp-ModelHub-signature">
          {inputs.length} inputs:{' '}
          {inputs
            .slice(0, SHOWN_INPUTS)
            .map(input => `${input.name} ${input.dtype}`)
            .join(', ')}
          {inputs.length > SHOWN_INPUTS &&
            ` … ${inputs.length - SHOWN_INPUTS} more`}
        </div>
      )}
      {origin.length > 0 && (
        <dl className="jp-ModelHub-metrics">
          {origin.map(([key, value]) => (
            <React.Fragment key={key}>
              <dt>{key}</dt>
              <dd title={value}>{value}</dd>
            </React.Fragment>
          ))}
        </dl>
      )}
    </details>
  );
}

/**
 * Turn a model name into a string usable inside an element id.
 */
function cssIdentifier(name: string): string {
  return name.replace(/[^A-Za-z0-9_-]/g, '_');
}
