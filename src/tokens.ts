import { Token } from '@lumino/coreutils';
import { ISignal } from '@lumino/signaling';

/**
 * Stage name (e.g. `prod`) to the version assigned to it (e.g. `v0.0.1`).
 */
export type StageAssignments = Record<string, string>;

/**
 * One entry of `GET /modelhub/api/models`.
 */
export interface IModelSummary {
  name: string;
  /** Latest registered version, e.g. `v0.0.2`; null if none. */
  latest: string | null;
  /** Number of registered versions. */
  versions: number;
  stages: StageAssignments;
  /** ISO 8601 timestamp of the last registration or stage change. */
  updated: string | null;
  deprecated: boolean;
}

/**
 * Body of `GET /modelhub/api/models`.
 */
export interface IModelList {
  models: IModelSummary[];
}

/**
 * Metadata stored with a model version.
 */
export interface IModelVersionMeta {
  name: string;
  version: string;
  flavor?: string;
  description?: string;
  metrics?: Record<string, number>;
  /** The inputs (and outputs) the model was registered with. */
  signature?: {
    inputs: { name: string; dtype: string }[];
    outputs?: { name: string; dtype: string }[];
  } | null;
  /** Where the version came from: data hash, code commit, notebook... */
  lineage?: Record<string, unknown> | null;
  [key: string]: unknown;
}

/**
 * One registered version of a model.
 */
export interface IModelVersion {
  meta: IModelVersionMeta;
  /** The git tag of the registration, e.g. `fraud@v0.0.1`. */
  tag: string;
  commit: string;
  /** Stages currently assigned to this version. */
  stages: string[];
  deprecated: boolean;
}

/**
 * Body of `GET /modelhub/api/models/{name}`.
 */
export interface IModelDetail {
  name: string;
  versions: IModelVersion[];
  stages: StageAssignments;
}

/**
 * Body of `POST /modelhub/api/models`.
 */
export interface IRegisterModelRequest {
  /** File path relative to the Jupyter server root. */
  path: string;
  name: string;
  description?: string;
  /** CSV or Parquet file of example inputs (the signature), relative to the root. */
  sample?: string;
  /** CSV or Parquet file of training features (kept for drift), relative to the root. */
  reference?: string;
}

/**
 * Body of `GET /modelhub/api/hub`: the hub the Jupyter server serves.
 */
export interface IHubInfo {
  path: string;
  exists: boolean;
  models: number;
}

/**
 * Body of every error response of the ModelHub REST API.
 */
export interface IErrorBody {
  /** Machine-readable code such as `RESOURCE_DOES_NOT_EXIST`. */
  error: string;
  /** Human-readable message, shown to the user as is. */
  message: string;
}

/**
 * The frontend state of the model registry, shared by the sidebar widgets.
 */
export interface IModelHubModel {
  /** Registered models, as last returned by the server. */
  readonly models: ReadonlyArray<IModelSummary>;
  /** Message of the last failed refresh, or null after a success. */
  readonly error: string | null;
  /** Whether at least one refresh has completed (successfully or not). */
  readonly loaded: boolean;
  /** Polling interval in seconds. */
  refreshInterval: number;
  /** Emitted whenever `models`, `error` or `loaded` change. */
  readonly changed: ISignal<IModelHubModel, void>;
  /** Emitted with the error when a refresh fails with a new message. */
  readonly errorRaised: ISignal<IModelHubModel, Error>;
  /** Fetch the model list now. Never rejects: failures land in `error`. */
  refresh(): Promise<void>;
  /** Where the hub the server serves is, and whether it exists. */
  getHub(): Promise<IHubInfo>;
  /** Fetch the versions and stages of one model. */
  getModel(name: string): Promise<IModelDetail>;
  /** Register a file of the server as a new version of a model. */
  registerModel(request: IRegisterModelRequest): Promise<IModelVersion>;
  /** Put a version of a model into a stage. */
  promote(name: string, request: IPromoteRequest): Promise<void>;
  /** Take a stage away from the version of a model that holds it. */
  demote(name: string, stage: string): Promise<void>;
}

/**
 * The token of the ModelHub model, for other extensions.
 */
export const IModelHubModel = new Token<IModelHubModel>(
  'jupyter-modelhub:IModelHubModel',
  'The state of the ModelHub model registry shown in the sidebar.'
);

/**
 * Body of `POST /modelhub/api/models/{name}/stages`.
 */
export interface IPromoteRequest {
  version: string;
  stage: string;
  message?: string;
}

/**
 * One replica of a deployment.
 */
export interface IReplicaStatus {
  slot: number;
  pid: number | null;
  port: number | null;
  version: string;
  state: string;
  /** `ready`, `unready`, `unreachable`, `starting` or `stopping`. */
  health: string;
  restarts: number;
  last_error: string | null;
}

/**
 * An experiment between a deployment's champion and its challengers.
 */
export interface ITrafficPolicy {
  /** `split`, `canary`, `bluegreen` or `shadow`. */
  kind: string;
  experiment: string;
  /** Variant name to version. */
  challengers: Record<string, string>;
  /** Every variant's share, the champion's under `champion`. */
  weights: Record<string, number>;
  key?: string | null;
  steps?: number[];
  step?: number;
  /** `running`, `stopped`, `promoted` or `rolled_back`. */
  state: string;
  reason?: string;
  started?: string;
}

/**
 * One entry of `GET /modelhub/api/deployments`.
 */
export interface IDeploymentStatus {
  name: string;
  /** `local`, `docker`, `kubernetes`... */
  target: string;
  model: string;
  ref: string;
  endpoint: string;
  desired_version: string;
  serving_version: string | null;
  follow_stage: boolean;
  revision: number;
  desired_replicas: number;
  /** `starting`, `running`, `updating`, `degraded`, `failed` or `stopped`. */
  phase: string;
  replicas: IReplicaStatus[];
  last_error: string | null;
  traffic?: ITrafficPolicy | null;
  /**
   * The process that runs the experiment's guardrails and canary steps, where the target
   * runs it apart (`running (pid 123)`, `not running`); null otherwise.
   */
  controller?: string | null;
}

/**
 * Body of `POST /modelhub/api/deployments`.
 */
export interface IDeployRequest {
  /** `NAME@vX.Y.Z`, `NAME#STAGE` or `NAME`. */
  ref: string;
  name?: string;
  target?: string;
  replicas?: number;
  port?: number;
  follow?: boolean;
  /** The target's own options (kubernetes: `namespace`, `image`…), checked by the server. */
  target_options?: Record<string, string | number>;
}

/**
 * One revision of a deployment (its rollback log).
 */
export interface IRevision {
  revision: number;
  commit: string;
  author: string;
  time: string;
  message: string;
  spec: { version: string; replicas: number; [key: string]: unknown };
}

/**
 * The health of one variant of a deployment over a short interval.
 */
export interface IHealthPoint {
  deployment: string;
  variant: string;
  /** Unix seconds. */
  end: number;
  requests: number;
  requests_per_second: number;
  error_rate: number | null;
  /** Seconds. */
  p50_latency: number | null;
  p99_latency: number | null;
}

/**
 * Body of `GET /modelhub/api/deployments/{name}/monitor`.
 */
export interface IDeploymentHealth {
  name: string;
  health: IHealthPoint[];
}

/**
 * Body of `GET /modelhub/api/deployments/{name}/drift/summary`.
 */
export interface IDriftSummary {
  deployment: string;
  ref: string;
  /** `drift`, `ok` or `no_data`. */
  state: 'drift' | 'ok' | 'no_data';
  message: string;
  n_rows: number;
  n_features: number;
  n_drifted: number;
  drift_share: number | null;
  drift_share_threshold: number | null;
}

/**
 * Body of `POST /modelhub/api/deployments/{name}/experiment`.
 */
export interface IExperimentRequest {
  challenger: string;
  kind?: string;
  split?: string;
  steps?: string;
  key?: string;
  dwell_seconds?: number | string;
  /** `max_error_rate`, `max_p95_seconds`, `min_requests`. */
  guardrails?: Record<string, number | string>;
}

/**
 * The parts of an experiment's report (`.../experiment/report`) or shadow comparison
 * (`.../experiment/shadow`) the sidebar shows: the server's own verdicts.
 */
export interface IExperimentVerdict {
  /** One line per challenger, in the server's words. */
  lines: string[];
  /** Requests logged per variant, when known. */
  requests: Record<string, number>;
}

/**
 * A sample of the live health of a deployment, kept for its sparklines.
 */
export interface IHealthSample {
  /** Unix seconds. */
  time: number;
  requestsPerSecond: number;
  /** Seconds, null when no request was answered. */
  p50Latency: number | null;
}

/**
 * The frontend state of the deployments and their experiments.
 */
export interface IDeploymentsModel {
  readonly deployments: ReadonlyArray<IDeploymentStatus>;
  readonly error: string | null;
  readonly loaded: boolean;
  /** Polling interval of the list, drift badges and experiment verdicts, in seconds. */
  refreshInterval: number;
  /** Polling interval of the live health sparklines, in seconds. */
  monitorInterval: number;
  /** Emitted whenever anything shown changes. */
  readonly changed: ISignal<IDeploymentsModel, void>;
  /** Emitted with the error when a refresh fails with a new message. */
  readonly errorRaised: ISignal<IDeploymentsModel, Error>;
  /** Names of the deployments with an action in flight (a new one included). */
  readonly busy: ReadonlyArray<string>;
  /** Whether an action on this deployment is in flight. */
  isBusy(name: string): boolean;
  drift(name: string): IDriftSummary | null;
  health(name: string): ReadonlyArray<IHealthSample>;
  verdict(name: string): IExperimentVerdict | null;
  refresh(): Promise<void>;
  targets(): Promise<string[]>;
  revisions(name: string): Promise<IRevision[]>;
  deploy(request: IDeployRequest): Promise<IDeploymentStatus>;
  update(name: string, version: string): Promise<IDeploymentStatus>;
  rollback(name: string, revision?: number): Promise<IDeploymentStatus>;
  stop(name: string): Promise<void>;
  startExperiment(
    name: string,
    request: IExperimentRequest
  ): Promise<IDeploymentStatus>;
  stopExperiment(name: string): Promise<IDeploymentStatus>;
  promoteExperiment(name: string): Promise<IDeploymentStatus>;
  advanceExperiment(name: string): Promise<IDeploymentStatus>;
}
