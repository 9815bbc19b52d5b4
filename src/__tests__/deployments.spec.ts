import { DeploymentsModel, HEALTH_SAMPLES } from '../deployments';
import { requestAPI } from '../request';
import { IDeploymentStatus, IDriftSummary } from '../tokens';

jest.mock('../request', () => ({
  requestAPI: jest.fn()
}));

const mockedRequest = requestAPI as jest.MockedFunction<typeof requestAPI>;

const SVC: IDeploymentStatus = {
  name: 'svc',
  target: 'local',
  model: 'fraud',
  ref: 'fraud@v0.0.1',
  endpoint: 'http://127.0.0.1:8123',
  desired_version: 'v0.0.1',
  serving_version: 'v0.0.1',
  follow_stage: false,
  revision: 1,
  desired_replicas: 2,
  phase: 'running',
  replicas: [],
  last_error: null,
  traffic: null
};

const AB: IDeploymentStatus = {
  ...SVC,
  name: 'ab',
  traffic: {
    kind: 'split',
    experiment: 'e1',
    challengers: { challenger: 'v0.0.2' },
    weights: { champion: 0.5, challenger: 0.5 },
    state: 'running'
  }
};

const NO_DATA: IDriftSummary = {
  deployment: 'svc',
  ref: 'fraud@v0.0.1',
  state: 'no_data',
  message: 'fraud@v0.0.1 has no reference data to compare with.',
  n_rows: 0,
  n_features: 0,
  n_drifted: 0,
  drift_share: null,
  drift_share_threshold: null
};

/**
 * A fake server: `routes` maps an endpoint (without query) and method to an answer or error.
 */
function serve(
  routes: Record<string, unknown | ((init?: RequestInit) => unknown)>
): void {
  mockedRequest.mockImplementation(async (endPoint = '', init) => {
    const key = `${init?.method ?? 'GET'} ${endPoint.split('?')[0]}`;
    if (!(key in routes)) {
      throw new Error(`unexpected ${key}`);
    }
    const answer = routes[key];
    const value = typeof answer === 'function' ? answer(init) : answer;
    if (value instanceof Error) {
      throw value;
    }
    return value as any;
  });
}

function calls(key: string): number {
  return mockedRequest.mock.calls.filter(
    ([endPoint, init]) =>
      `${init?.method ?? 'GET'} ${(endPoint ?? '').split('?')[0]}` === key
  ).length;
}

describe('DeploymentsModel', () => {
  let model: DeploymentsModel;

  beforeEach(() => {
    mockedRequest.mockReset();
    model = new DeploymentsModel({ autoStart: false });
  });

  afterEach(() => {
    model.dispose();
  });

  it('starts empty with the default intervals', () => {
    expect(model.deployments).toEqual([]);
    expect(model.loaded).toBe(false);
    expect(model.refreshInterval).toBe(10);
    expect(model.monitorInterval).toBe(5);
    expect(model.drift('svc')).toBeNull();
    expect(model.health('svc')).toEqual([]);
  });

  it('loads the deployments with their drift verdicts', async () => {
    serve({
      'GET deployments': { deployments: [SVC] },
      'GET deployments/svc/drift/summary': NO_DATA
    });
    const changed = jest.fn();
    model.changed.connect(changed);

    await model.refresh();

    expect(model.deployments).toEqual([SVC]);
    expect(model.loaded).toBe(true);
    expect(model.drift('svc')).toEqual(NO_DATA);
    expect(changed).toHaveBeenCalled();
  });

  it("fetches a running experiment's verdict in the server's words", async () => {
    serve({
      'GET deployments': { deployments: [AB] },
      'GET deployments/ab/drift/summary': { ...NO_DATA, deployment: 'ab' },
      'GET deployments/ab/experiment/report': {
        requests: { champion: 120, challenger: 118 },
        report: {
          comparisons: [
            { challenger: 'challenger', verdict: 'not enough data yet' }
          ]
        }
      }
    });

    await model.refresh();

    expect(model.verdict('ab')).toEqual({
      lines: ['challenger: not enough data yet'],
      requests: { champion: 120, challenger: 118 }
    });
    expect(model.verdict('svc')).toBeNull();
  });

  it("shows a shadow experiment's summary as its verdict", async () => {
    const shadow: IDeploymentStatus = {
      ...AB,
      traffic: { ...AB.traffic!, kind: 'shadow' }
    };
    serve({
      'GET deployments': { deployments: [shadow] },
      'GET deployments/ab/drift/summary': { ...NO_DATA, deployment: 'ab' },
      'GET deployments/ab/experiment/shadow': {
        summary: 'challenger agrees on 97.0% of 300 requests'
      }
    });

    await model.refresh();

    expect(model.verdict('ab')).toEqual({
      lines: ['challenger agrees on 97.0% of 300 requests'],
      requests: {}
    });
    expect(calls('GET deployments/ab/experiment/report')).toBe(0);
  });

  it('drops the verdict of an experiment that ended', async () => {
    serve({
      'GET deployments': { deployments: [AB] },
      'GET deployments/ab/drift/summary': { ...NO_DATA, deployment: 'ab' },
      'GET deployments/ab/experiment/report': {
        requests: {},
        report: { comparisons: [] }
      }
    });
    await model.refresh();
    expect(model.verdict('ab')).not.toBeNull();

    serve({
      'GET deployments': {
        deployments: [{ ...AB, traffic: { ...AB.traffic!, state: 'promoted' } }]
      },
      'GET deployments/ab/drift/summary': { ...NO_DATA, deployment: 'ab' }
    });
    await model.refresh();
    expect(model.verdict('ab')).toBeNull();
  });

  it("keeps a report's error as the verdict (no outcome yet)", async () => {
    serve({
      'GET deployments': { deployments: [AB] },
      'GET deployments/ab/drift/summary': new Error('gone'),
      'GET deployments/ab/experiment/report': new Error(
        'No outcome was posted for experiment e1.'
      )
    });

    await model.refresh();

    expect(model.verdict('ab')?.lines).toEqual([
      'No outcome was posted for experiment e1.'
    ]);
    // A failed drift request leaves the badge as it was, without an error.
    expect(model.drift('ab')).toBeNull();
    expect(model.error).toBeNull();
  });

  it("keeps the server's message when the list fails, and never rejects", async () => {
    serve({ 'GET deployments': new Error('No hub at /nowhere.') });
    const raised = jest.fn();
    model.errorRaised.connect((_, error) => raised(error.message));

    await expect(model.refresh()).resolves.toBeUndefined();
    await model.refresh();

    expect(model.error).toBe('No hub at /nowhere.');
    expect(raised).toHaveBeenCalledTimes(1);
  });

  it('marks a deployment busy while an action runs, then refreshes', async () => {
    let finish: (value: unknown) => void = () => undefined;
    serve({
      'GET deployments': { deployments: [SVC] },
      'GET deployments/svc/drift/summary': NO_DATA,
      'POST deployments': () => new Promise(resolve => (finish = resolve))
    });

    const deploying = model.deploy({ ref: 'fraud@v0.0.1', name: 'svc' });
    expect(model.isBusy('svc')).toBe(true);
    expect(model.busy).toEqual(['svc']);
    expect(JSON.parse(mockedRequest.mock.calls[0][1]!.body as string)).toEqual({
      ref: 'fraud@v0.0.1',
      name: 'svc'
    });

    finish(SVC);
    await expect(deploying).resolves.toEqual(SVC);
    expect(model.isBusy('svc')).toBe(false);
    expect(model.deployments).toEqual([SVC]);
  });

  it('names a deployment after its model when no name is given', () => {
    serve({ 'POST deployments': () => new Promise(() => undefined) });
    void model.deploy({ ref: 'fraud#prod' });
    expect(model.busy).toEqual(['fraud']);
  });

  it('rejects with the server message and is not busy afterwards', async () => {
    serve({
      'GET deployments': { deployments: [] },
      'POST deployments/svc/update': new Error('Deployment svc failed: boom')
    });

    await expect(model.update('svc', 'v0.0.2')).rejects.toThrow(
      'Deployment svc failed: boom'
    );
    expect(model.isBusy('svc')).toBe(false);
    expect(calls('GET deployments')).toBe(1);
  });

  it('sends the chosen revision of a rollback, and none for the previous one', async () => {
    serve({
      'GET deployments': { deployments: [] },
      'POST deployments/svc/rollback': SVC
    });

    await model.rollback('svc', 1);
    await model.rollback('svc');

    const bodies = mockedRequest.mock.calls
      .filter(([endPoint]) => endPoint === 'deployments/svc/rollback')
      .map(([, init]) => JSON.parse(init!.body as string));
    expect(bodies).toEqual([{ revision: 1 }, {}]);
  });

  it('forgets what it knew of a stopped deployment', async () => {
    serve({
      'GET deployments': { deployments: [SVC] },
      'GET deployments/svc/drift/summary': NO_DATA,
      'DELETE deployments/svc': { name: 'svc', stopped: true }
    });
    await model.refresh();
    expect(model.drift('svc')).not.toBeNull();

    serve({
      'GET deployments': { deployments: [] },
      'DELETE deployments/svc': { name: 'svc', stopped: true }
    });
    await model.stop('svc');

    expect(model.deployments).toEqual([]);
    expect(model.drift('svc')).toBeNull();
  });

  it('calls the experiment routes', async () => {
    serve({
      'GET deployments': { deployments: [] },
      'POST deployments/ab/experiment': AB,
      'DELETE deployments/ab/experiment': SVC,
      'POST deployments/ab/experiment/promote': SVC,
      'POST deployments/ab/experiment/advance': AB
    });

    await model.startExperiment('ab', { challenger: 'v0.0.2', kind: 'split' });
    await model.stopExperiment('ab');
    await model.promoteExperiment('ab');
    await model.advanceExperiment('ab');

    expect(calls('POST deployments/ab/experiment')).toBe(1);
    expect(calls('DELETE deployments/ab/experiment')).toBe(1);
    expect(calls('POST deployments/ab/experiment/promote')).toBe(1);
    expect(calls('POST deployments/ab/experiment/advance')).toBe(1);
  });

  it('lists the targets and revisions the server gives', async () => {
    serve({
      'GET targets': { targets: ['local', 'docker'] },
      'GET deployments/svc/revisions': {
        name: 'svc',
        revisions: [{ revision: 1 }, { revision: 2 }]
      }
    });

    await expect(model.targets()).resolves.toEqual(['local', 'docker']);
    await expect(model.revisions('svc')).resolves.toEqual([
      { revision: 1 },
      { revision: 2 }
    ]);
  });

  it(`keeps the last ${HEALTH_SAMPLES} health samples of each deployment`, async () => {
    jest.useFakeTimers();
    let tick = 0;
    serve({
      'GET deployments': { deployments: [SVC] },
      'GET deployments/svc/drift/summary': NO_DATA,
      'GET deployments/svc/monitor': () => {
        tick += 1;
        return {
          name: 'svc',
          health: [
            {
              deployment: 'svc',
              variant: 'champion',
              end: tick,
              requests: 10,
              requests_per_second: tick,
              error_rate: 0,
              p50_latency: 0.002,
              p99_latency: 0.01
            },
            {
              deployment: 'svc',
              variant: 'challenger',
              end: tick,
              requests: 1,
              requests_per_second: 1,
              error_rate: 0,
              p50_latency: 0.5,
              p99_latency: 0.9
            }
          ]
        };
      }
    });
    model.dispose();
    model = new DeploymentsModel({ monitorInterval: 1, refreshInterval: 1000 });
    await model.refresh();

    for (let i = 0; i < HEALTH_SAMPLES + 5; i++) {
      await jest.advanceTimersByTimeAsync(1000);
    }
    jest.useRealTimers();

    const samples = model.health('svc');
    expect(samples).toHaveLength(HEALTH_SAMPLES);
    const last = samples[samples.length - 1];
    // All variants' requests/s, the champion's median latency.
    expect(last.requestsPerSecond).toBe(tick + 1);
    expect(last.p50Latency).toBe(0.002);
    expect(mockedRequest.mock.calls.map(([e]) => e)).toContain(
      'deployments/svc/monitor?interval=1'
    );
  });

  it('applies new intervals, clamped to at least a second', () => {
    model.refreshInterval = 0;
    model.monitorInterval = 30;
    expect(model.refreshInterval).toBe(1);
    expect(model.monitorInterval).toBe(30);
  });
});
