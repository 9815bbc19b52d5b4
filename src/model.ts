import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { requestAPI } from './request';
import {
  IHubInfo,
  IModelDetail,
  IModelHubModel,
  IModelList,
  IModelSummary,
  IModelVersion,
  IPromoteRequest,
  IRegisterModelRequest
} from './tokens';

/**
 * Default polling interval in seconds (the `refreshInterval` setting).
 */
export const DEFAULT_REFRESH_INTERVAL = 10;

/**
 * Upper bound of the back-off interval while the server keeps failing, in seconds.
 */
const MAX_BACKOFF_INTERVAL = 300;

/**
 * Holds the list of registered models and keeps it fresh by polling the server.
 */
export class ModelHubModel implements IModelHubModel, IDisposable {
  constructor(options: ModelHubModel.IOptions = {}) {
    this._refreshInterval = ModelHubModel.sanitizeInterval(
      options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL
    );
    this._poll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._pollOnce(),
      frequency: this._frequency(),
      name: 'jupyter-modelhub:models',
      standby: options.standby ?? 'when-hidden'
    });
  }

  get models(): ReadonlyArray<IModelSummary> {
    return this._models;
  }

  get error(): string | null {
    return this._error;
  }

  get loaded(): boolean {
    return this._loaded;
  }

  get changed(): ISignal<this, void> {
    return this._changed;
  }

  get errorRaised(): ISignal<this, Error> {
    return this._errorRaised;
  }

  get isDisposed(): boolean {
    return this._isDisposed;
  }

  /**
   * Polling interval in seconds.
   */
  get refreshInterval(): number {
    return this._refreshInterval;
  }

  set refreshInterval(seconds: number) {
    const interval = ModelHubModel.sanitizeInterval(seconds);
    if (interval === this._refreshInterval) {
      return;
    }
    this._refreshInterval = interval;
    this._poll.frequency = this._frequency();
    // Re-arm the pending tick so that the new interval applies at once.
    void this._poll.schedule({
      cancel: ({ phase }) => phase === 'constructed' || phase === 'stopped'
    });
  }

  async refresh(): Promise<void> {
    await this._fetch();
  }

  getHub(): Promise<IHubInfo> {
    return requestAPI<IHubInfo>('hub');
  }

  getModel(name: string): Promise<IModelDetail> {
    return requestAPI<IModelDetail>(`models/${encodeURIComponent(name)}`);
  }

  async registerModel(request: IRegisterModelRequest): Promise<IModelVersion> {
    const version = await requestAPI<IModelVersion>('models', {
      method: 'POST',
      body: JSON.stringify(request)
    });
    await this.refresh();
    return version;
  }

  async promote(name: string, request: IPromoteRequest): Promise<void> {
    await requestAPI(`models/${encodeURIComponent(name)}/stages`, {
      method: 'POST',
      body: JSON.stringify(request)
    });
    await this.refresh();
  }

  async demote(name: string, stage: string): Promise<void> {
    await requestAPI(
      `models/${encodeURIComponent(name)}/stages/${encodeURIComponent(stage)}`,
      { method: 'DELETE' }
    );
    await this.refresh();
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    Signal.clearData(this);
  }

  /**
   * One poll tick: rethrows so that the poll backs off while the server fails.
   */
  private async _pollOnce(): Promise<void> {
    const ok = await this._fetch();
    if (!ok) {
      throw new Error(this._error ?? 'ModelHub refresh failed');
    }
  }

  /**
   * Fetch the model list and update the state.
   *
   * @returns whether the request succeeded.
   */
  private async _fetch(): Promise<boolean> {
    const request = ++this._requestCounter;
    let models: IModelSummary[] | null = null;
    let failure: Error | null = null;
    try {
      const body = await requestAPI<IModelList>('models');
      models = body.models ?? [];
    } catch (reason) {
      failure = reason instanceof Error ? reason : new Error(String(reason));
    }
    // A newer request was sent meanwhile: its answer wins.
    if (this._isDisposed || request !== this._requestCounter) {
      return failure === null;
    }
    const previousError = this._error;
    this._loaded = true;
    if (failure === null) {
      this._models = models ?? [];
      this._error = null;
    } else {
      this._error = failure.message;
    }
    this._changed.emit();
    if (failure !== null && failure.message !== previousError) {
      this._errorRaised.emit(failure);
    }
    return failure === null;
  }

  private _frequency(): IPoll.Frequency {
    return {
      interval: this._refreshInterval * 1000,
      backoff: true,
      max: Math.max(this._refreshInterval, MAX_BACKOFF_INTERVAL) * 1000
    };
  }

  private _models: IModelSummary[] = [];
  private _error: string | null = null;
  private _loaded = false;
  private _isDisposed = false;
  private _refreshInterval: number;
  private _requestCounter = 0;
  private _poll: Poll;
  private _changed = new Signal<this, void>(this);
  private _errorRaised = new Signal<this, Error>(this);
}

/**
 * A namespace for ModelHubModel statics.
 */
export namespace ModelHubModel {
  /**
   * Options of a ModelHubModel.
   */
  export interface IOptions {
    /** Polling interval in seconds; defaults to 10. */
    refreshInterval?: number;
    /** Whether polling starts at once; defaults to true. */
    autoStart?: boolean;
    /** When polling pauses; defaults to `'when-hidden'` (the browser tab is hidden). */
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }

  /**
   * Clamp a polling interval from the settings to [1 s, 1 day].
   */
  export function sanitizeInterval(seconds: number): number {
    if (Number.isNaN(seconds)) {
      return DEFAULT_REFRESH_INTERVAL;
    }
    return Math.min(Math.max(seconds, 1), 86400);
  }
}
