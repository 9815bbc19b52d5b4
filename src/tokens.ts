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
  /** Fetch the versions and stages of one model. */
  getModel(name: string): Promise<IModelDetail>;
  /** Register a file of the server as a new version of a model. */
  registerModel(request: IRegisterModelRequest): Promise<IModelVersion>;
}

/**
 * The token of the ModelHub model, for other extensions.
 */
export const IModelHubModel = new Token<IModelHubModel>(
  'jupyter-modelhub:IModelHubModel',
  'The state of the ModelHub model registry shown in the sidebar.'
);
