import { IDisposable } from '@lumino/disposable';
import { IPoll, Poll } from '@lumino/polling';
import { ISignal, Signal } from '@lumino/signaling';

import { DEFAULT_REFRESH_INTERVAL, ModelHubModel } from './model';
import { requestAPI } from './request';
import {
  IDeploymentHealth,
  IDeploymentStatus,
  IDeploymentsModel,
  IDeployRequest,
  IDriftSummary,
  IExperimentRequest,
  IExperimentVerdict,
  IHealthSample,
  IRevision
} from './tokens';

/**
 * Default polling interval of the live health sparklines, in seconds.
 */
export const DEFAULT_MONITOR_INTERVAL = 5;

/**
 * How many health samples a sparkline keeps.
 */
export const HEALTH_SAMPLES = 30;

/**
 * How long the server measures each health sample, in seconds (`?interval=` of `/monitor`).
 */
const MONITOR_WINDOW = 1;

/**
 * Upper bound of the back-off interval while the server keeps failing, in seconds.
 */
const MAX_BACKOFF_INTERVAL = 300;

/**
 * Holds the deployments, their drift verdicts, experiment verdicts and live health, and keeps
 * them fresh by polling; its actions call the REST API and refresh.
 *
 * Everything shown is what the server computed: this class only stores and forwards it.
 */
export class DeploymentsModel implements IDeploymentsModel, IDisposable {
  constructor(options: DeploymentsModel.IOptions = {}) {
    this._refreshInterval = ModelHubModel.sanitizeInterval(
      options.refreshInterval ?? DEFAULT_REFRESH_INTERVAL
    );
    this._monitorInterval = ModelHubModel.sanitizeInterval(
      options.monitorInterval ?? DEFAULT_MONITOR_INTERVAL
    );
    const standby = options.standby ?? 'when-hidden';
    this._poll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._pollOnce(),
      frequency: frequency(this._refreshInterval),
      name: 'jupyter-modelhub:deployments',
      standby
    });
    this._monitorPoll = new Poll({
      auto: options.autoStart ?? true,
      factory: () => this._monitorOnce(),
      frequency: frequency(this._monitorInterval),
      name: 'jupyter-modelhub:monitor',
      standby
    });
  }

  get deployments(): ReadonlyArray<IDeploymentStatus> {
    return this._deployments;
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

  get refreshInterval(): number {
    return this._refreshInterval;
  }

  set refreshInterval(seconds: number) {
    const interval = ModelHubModel.sanitizeInterval(seconds);
    if (interval !== this._refreshInterval) {
      this._refreshInterval = interval;
      rearm(this._poll, frequency(interval));
    }
  }

  get monitorInterval(): number {
    return this._monitorInterval;
  }

  set monitorInterval(seconds: number) {
    const interval = ModelHubModel.sanitizeInterval(seconds);
    if (interval !== this._monitorInterval) {
      this._monitorInterval = interval;
      rearm(this._monitorPoll, frequency(interval));
    }
  }

  get busy(): ReadonlyArray<string> {
    return [...this._busy];
  }

  isBusy(name: string): boolean {
    return this._busy.has(name);
  }

  drift(name: string): IDriftSummary | null {
    return this._drift.get(name) ?? null;
  }

  health(name: string): ReadonlyArray<IHealthSample> {
    return this._health.get(name) ?? [];
  }

  verdict(name: string): IExperimentVerdict | null {
    return this._verdicts.get(name) ?? null;
  }

  async refresh(): Promise<void> {
    await this._fetch();
  }

  async targets(): Promise<string[]> {
    const body = await requestAPI<{ targets: string[] }>('targets');
    return body.targets;
  }

  async revisions(name: string): Promise<IRevision[]> {
    const body = await requestAPI<{ revisions: IRevision[] }>(
      `${path(name)}/revisions`
    );
    return body.revisions;
  }

  deploy(request: IDeployRequest): Promise<IDeploymentStatus> {
    const name = request.name || request.ref.split(/[@#]/)[0];
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>('deployments', {
        method: 'POST',
        body: JSON.stringify(request)
      })
    );
  }

  update(name: string, version: string): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(`${path(name)}/update`, {
        method: 'POST',
        body: JSON.stringify({ version })
      })
    );
  }

  rollback(name: string, revision?: number): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(`${path(name)}/rollback`, {
        method: 'POST',
        body: JSON.stringify(revision === undefined ? {} : { revision })
      })
    );
  }

  async stop(name: string): Promise<void> {
    await this._act(name, () =>
      requestAPI<unknown>(path(name), { method: 'DELETE' })
    );
    this._forget(name);
  }

  startExperiment(
    name: string,
    request: IExperimentRequest
  ): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(`${path(name)}/experiment`, {
        method: 'POST',
        body: JSON.stringify(request)
      })
    );
  }

  stopExperiment(name: string): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(
        `${path(name)}/experiment?reason=${encodeURIComponent(
          'stopped from the JupyterLab sidebar'
        )}`,
        { method: 'DELETE' }
      )
    );
  }

  promoteExperiment(name: string): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(`${path(name)}/experiment/promote`, {
        method: 'POST',
        body: ''
      })
    );
  }

  advanceExperiment(name: string): Promise<IDeploymentStatus> {
    return this._act(name, () =>
      requestAPI<IDeploymentStatus>(`${path(name)}/experiment/advance`, {
        method: 'POST',
        body: ''
      })
    );
  }

  dispose(): void {
    if (this._isDisposed) {
      return;
    }
    this._isDisposed = true;
    this._poll.dispose();
    this._monitorPoll.dispose();
    Signal.clearData(this);
  }

  /**
   * Run one action on a deployment: mark it busy meanwhile, refresh afterwards (also after a
   * failure, which the caller reports), and hand back the action's answer.
   */
  private async _act<T>(name: string, action: () => Promise<T>): Promise<T> {
    this._busy.add(name);
    this._changed.emit();
    try {
      return await action();
    } finally {
      this._busy.delete(name);
      await this._fetch();
    }
  }

  private _forget(name: string): void {
    this._drift.delete(name);
    this._health.delete(name);
    this._verdicts.delete(name);
    this._changed.emit();
  }

  private async _pollOnce(): Promise<void> {
    const ok = await this._fetch();
    if (!ok) {
      throw new Error(this._error ?? 'ModelHub refresh failed');
    }
  }

  /**
   * Fetch the deployments, then each one's drift verdict and experiment verdict.
   *
   * @returns whether the list request succeeded.
   */
  private async _fetch(): Promise<boolean> {
    const request = ++this._requestCounter;
    let deployments: IDeploymentStatus[] | null = null;
    let failure: Error | null = null;
    try {
      const body = await requestAPI<{ deployments: IDeploymentStatus[] }>(
        'deployments'
      );
      deployments = body.deployments ?? [];
    } catch (reason) {
      failure = reason instanceof Error ? reason : new Error(String(reason));
    }
    if (this._isDisposed || request !== this._requestCounter) {
      return failure === null;
    }
    const previousError = this._error;
    this._loaded = true;
    if (failure === null && deployments !== null) {
      this._deployments = deployments;
      this._error = null;
      const names = new Set(deployments.map(d => d.name));
      for (const known of [...this._drift.keys(), ...this._health.keys()]) {
        if (!names.has(known)) {
          this._drift.delete(known);
          this._health.delete(known);
        }
      }
    } else if (failure !== null) {
      this._error = failure.message;
    }
    this._changed.emit();
    if (failure !== null && failure.message !== previousError) {
      this._errorRaised.emit(failure);
    }
    if (deployments !== null) {
      await Promise.all([
        ...deployments.map(d => this._fetchDrift(d.name)),
        ...deployments.map(d => this._fetchVerdict(d))
      ]);
      if (!this._isDisposed) {
        this._changed.emit();
      }
    }
    return failure === null;
  }

  private async _fetchDrift(name: string): Promise<void> {
    try {
      const summary = await requestAPI<IDriftSummary>(
        `${path(name)}/drift/summary`
      );
      this._drift.set(name, summary);
    } catch {
      // A deployment stopped meanwhile, or a hub gone: the badge just stays as it was.
    }
  }

  private async _fetchVerdict(status: IDeploymentStatus): Promise<void> {
    const traffic = status.traffic;
    if (!traffic || traffic.state !== 'running') {
      this._verdicts.delete(status.name);
      return;
    }
    try {
      if (traffic.kind === 'shadow') {
        const report = await requestAPI<{ summary: string }>(
          `${path(status.name)}/experiment/shadow`
        );
        this._verdicts.set(status.name, {
          lines: [report.summary],
          requests: {}
        });
      } else {
        const analysis = await requestAPI<{
          requests: Record<string, number>;
          report: { comparisons: { challenger: string; verdict: string }[] };
        }>(`${path(status.name)}/experiment/report`);
        this._verdicts.set(status.name, {
          lines: analysis.report.comparisons.map(
            c => `${c.challenger}: ${c.verdict}`
          ),
          requests: analysis.requests ?? {}
        });
      }
    } catch (reason) {
      // No outcome or no shadow answer yet: the server says so.
      this._verdicts.set(status.name, {
        lines: [(reason as Error).message],
        requests: {}
      });
    }
  }

  /**
   * One sample of live health per running deployment, appended to its sparklines.
   */
  private async _monitorOnce(): Promise<void> {
    const running = this._deployments.filter(d => d.phase !== 'stopped');
    await Promise.all(running.map(d => this._sample(d.name)));
    if (running.length > 0 && !this._isDisposed) {
      this._changed.emit();
    }
  }

  private async _sample(name: string): Promise<void> {
    let body: IDeploymentHealth;
    try {
      body = await requestAPI<IDeploymentHealth>(
        `${path(name)}/monitor?interval=${MONITOR_WINDOW}`
      );
    } catch {
      return; // not serving right now: no sample
    }
    const points = body.health;
    if (points.length === 0) {
      return;
    }
    // The server measures per variant: the sparklines show the deployment's total
    // requests/s and the champion's (else the first variant's) median latency.
    const champion =
      points.find(p => p.variant === 'champion') ?? points[0] ?? null;
    const sample: IHealthSample = {
      time: champion.end,
      requestsPerSecond: points.reduce((s, p) => s + p.requests_per_second, 0),
      p50Latency: champion.p50_latency
    };
    const samples = [...(this._health.get(name) ?? []), sample];
    this._health.set(name, samples.slice(-HEALTH_SAMPLES));
  }

  private _deployments: IDeploymentStatus[] = [];
  private _drift = new Map<string, IDriftSummary>();
  private _health = new Map<string, IHealthSample[]>();
  private _verdicts = new Map<string, IExperimentVerdict>();
  private _busy = new Set<string>();
  private _error: string | null = null;
  private _loaded = false;
  private _isDisposed = false;
  private _refreshInterval: number;
  private _monitorInterval: number;
  private _requestCounter = 0;
  private _poll: Poll;
  private _monitorPoll: Poll;
  private _changed = new Signal<this, void>(this);
  private _errorRaised = new Signal<this, Error>(this);
}

/**
 * A namespace for DeploymentsModel statics.
 */
export namespace DeploymentsModel {
  /**
   * Options of a DeploymentsModel.
   */
  export interface IOptions {
    /** Polling interval of the list, drift and verdicts in seconds; defaults to 10. */
    refreshInterval?: number;
    /** Polling interval of the health sparklines in seconds; defaults to 5. */
    monitorInterval?: number;
    /** Whether polling starts at once; defaults to true. */
    autoStart?: boolean;
    /** When polling pauses; defaults to `'when-hidden'`. */
    standby?: Poll.Standby | (() => boolean | Poll.Standby);
  }
}

/**
 * The API path of one deployment.
 */
function path(name: string): string {
  return `deployments/${encodeURIComponent(name)}`;
}

function frequency(seconds: number): IPoll.Frequency {
  return {
    interval: seconds * 1000,
    backoff: true,
    max: Math.max(seconds, MAX_BACKOFF_INTERVAL) * 1000
  };
}

/**
 * Apply a new frequency to a poll at once (re-arm its pending tick).
 */
function rearm(poll: Poll, value: IPoll.Frequency): void {
  poll.frequency = value;
  void poll.schedule({
    cancel: ({ phase }) => phase === 'constructed' || phase === 'stopped'
  });
}
