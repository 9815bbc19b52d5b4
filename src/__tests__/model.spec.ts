import { ModelHubModel } from '../model';
import { requestAPI } from '../request';
import { IModelSummary } from '../tokens';

jest.mock('../request', () => ({
  requestAPI: jest.fn()
}));

const mockedRequest = requestAPI as jest.MockedFunction<typeof requestAPI>;

const FRAUD: IModelSummary = {
  name: 'fraud',
  latest: 'v0.0.2',
  versions: 2,
  stages: { prod: 'v0.0.1' },
  updated: '2026-11-22T05:00:00+00:00',
  deprecated: false
};

const CHURN: IModelSummary = {
  name: 'churn',
  latest: 'v0.0.1',
  versions: 1,
  stages: {},
  updated: '2026-11-22T06:00:00+00:00',
  deprecated: false
};

/** Make the mocked API answer `GET models` with these models. */
function answerModels(models: IModelSummary[]): void {
  mockedRequest.mockResolvedValue({ models } as any);
}

/** Count the `GET models` calls made so far. */
function listCalls(): number {
  return mockedRequest.mock.calls.filter(
    ([endPoint, init]) => endPoint === 'models' && init === undefined
  ).length;
}

describe('ModelHubModel', () => {
  let model: ModelHubModel;

  beforeEach(() => {
    mockedRequest.mockReset();
  });

  afterEach(() => {
    model?.dispose();
    jest.useRealTimers();
  });

  describe('refresh()', () => {
    beforeEach(() => {
      model = new ModelHubModel({ autoStart: false });
    });

    it('starts empty and not loaded', () => {
      expect(model.models).toEqual([]);
      expect(model.loaded).toBe(false);
      expect(model.error).toBeNull();
      expect(model.refreshInterval).toBe(10);
    });

    it('loads the model list from GET models and emits changed', async () => {
      answerModels([FRAUD, CHURN]);
      const changed = jest.fn();
      model.changed.connect(changed);

      await model.refresh();

      expect(mockedRequest).toHaveBeenCalledWith('models');
      expect(model.models).toEqual([FRAUD, CHURN]);
      expect(model.loaded).toBe(true);
      expect(model.error).toBeNull();
      expect(changed).toHaveBeenCalledTimes(1);
    });

    it("keeps the server's message when a request fails, and never rejects", async () => {
      answerModels([FRAUD]);
      await model.refresh();
      mockedRequest.mockRejectedValue(
        new Error('MODELHUB_HUB is not set: no hub to read')
      );
      const raised = jest.fn();
      model.errorRaised.connect((_, error) => raised(error.message));

      await expect(model.refresh()).resolves.toBeUndefined();

      expect(model.error).toBe('MODELHUB_HUB is not set: no hub to read');
      expect(model.loaded).toBe(true);
      // The last known list stays on screen.
      expect(model.models).toEqual([FRAUD]);
      expect(raised).toHaveBeenCalledWith(
        'MODELHUB_HUB is not set: no hub to read'
      );
    });

    it('raises an error once while the same error repeats', async () => {
      mockedRequest.mockRejectedValue(new Error('server down'));
      const raised = jest.fn();
      model.errorRaised.connect(raised);

      await model.refresh();
      await model.refresh();
      expect(raised).toHaveBeenCalledTimes(1);

      mockedRequest.mockRejectedValue(new Error('another failure'));
      await model.refresh();
      expect(raised).toHaveBeenCalledTimes(2);
    });

    it('clears the error after a successful refresh', async () => {
      mockedRequest.mockRejectedValueOnce(new Error('server down'));
      await model.refresh();
      expect(model.error).toBe('server down');

      answerModels([CHURN]);
      await model.refresh();
      expect(model.error).toBeNull();
      expect(model.models).toEqual([CHURN]);
    });

    it('ignores an answer that arrives after a newer one', async () => {
      let resolveSlow: (value: unknown) => void = () => undefined;
      mockedRequest
        .mockImplementationOnce(
          () => new Promise(resolve => (resolveSlow = resolve)) as any
        )
        .mockResolvedValueOnce({ models: [CHURN] } as any);

      const slow = model.refresh();
      await model.refresh();
      resolveSlow({ models: [FRAUD] });
      await slow;

      expect(model.models).toEqual([CHURN]);
    });

    it('treats a body without models as an empty list', async () => {
      mockedRequest.mockResolvedValue({} as any);
      await model.refresh();
      expect(model.models).toEqual([]);
      expect(model.loaded).toBe(true);
    });
  });

  describe('getModel() and registerModel()', () => {
    beforeEach(() => {
      model = new ModelHubModel({ autoStart: false });
    });

    it('GETs one model with its name escaped', async () => {
      mockedRequest.mockResolvedValue({
        name: 'a b',
        versions: [],
        stages: {}
      } as any);

      const detail = await model.getModel('a b');

      expect(mockedRequest).toHaveBeenCalledWith('models/a%20b');
      expect(detail.name).toBe('a b');
    });

    it('POSTs the registration and refreshes the list', async () => {
      const version = {
        meta: { name: 'demo', version: 'v0.0.1', flavor: 'sklearn' },
        tag: 'demo@v0.0.1',
        commit: 'abc1234',
        stages: [],
        deprecated: false
      };
      mockedRequest.mockImplementation(async (endPoint, init) => {
        if (init?.method === 'POST') {
          return version as any;
        }
        return { models: [{ ...CHURN, name: 'demo' }] } as any;
      });

      const result = await model.registerModel({
        path: 'models/demo.joblib',
        name: 'demo',
        description: 'A demo'
      });

      expect(result).toEqual(version);
      const [endPoint, init] = mockedRequest.mock.calls[0];
      expect(endPoint).toBe('models');
      expect(init?.method).toBe('POST');
      expect(JSON.parse(init?.body as string)).toEqual({
        path: 'models/demo.joblib',
        name: 'demo',
        description: 'A demo'
      });
      expect(model.models.map(item => item.name)).toEqual(['demo']);
    });

    it('rejects with the server error when registration fails', async () => {
      mockedRequest.mockRejectedValue(
        new Error('File not found: models/missing.joblib')
      );
      await expect(
        model.registerModel({ path: 'models/missing.joblib', name: 'demo' })
      ).rejects.toThrow('File not found: models/missing.joblib');
    });
  });

  describe('polling', () => {
    beforeEach(() => {
      jest.useFakeTimers();
      answerModels([FRAUD]);
    });

    it('fetches at start, then every refreshInterval seconds', async () => {
      model = new ModelHubModel({ refreshInterval: 10, standby: 'never' });

      await jest.advanceTimersByTimeAsync(100);
      expect(listCalls()).toBe(1);
      expect(model.models).toEqual([FRAUD]);

      await jest.advanceTimersByTimeAsync(9000);
      expect(listCalls()).toBe(1);

      await jest.advanceTimersByTimeAsync(1000);
      expect(listCalls()).toBe(2);

      await jest.advanceTimersByTimeAsync(10000);
      expect(listCalls()).toBe(3);
    });

    it('defaults to a 10 second interval', async () => {
      model = new ModelHubModel({ standby: 'never' });
      await jest.advanceTimersByTimeAsync(100);
      await jest.advanceTimersByTimeAsync(10000);
      expect(listCalls()).toBe(2);
    });

    it('applies a new refreshInterval at once', async () => {
      model = new ModelHubModel({ refreshInterval: 60, standby: 'never' });
      await jest.advanceTimersByTimeAsync(100);
      expect(listCalls()).toBe(1);

      model.refreshInterval = 2;
      expect(model.refreshInterval).toBe(2);
      await jest.advanceTimersByTimeAsync(2000);
      expect(listCalls()).toBe(2);
      await jest.advanceTimersByTimeAsync(2000);
      expect(listCalls()).toBe(3);
    });

    it('clamps the interval to at least one second', () => {
      model = new ModelHubModel({ refreshInterval: 0, autoStart: false });
      expect(model.refreshInterval).toBe(1);
      model.refreshInterval = -5;
      expect(model.refreshInterval).toBe(1);
      model.refreshInterval = NaN;
      expect(model.refreshInterval).toBe(10);
    });

    it('does not fetch while standing by', async () => {
      let hidden = true;
      model = new ModelHubModel({ standby: () => hidden });
      await jest.advanceTimersByTimeAsync(25000);
      expect(listCalls()).toBe(0);

      hidden = false;
      await jest.advanceTimersByTimeAsync(10000);
      expect(listCalls()).toBe(1);
    });

    it('backs off while the server fails', async () => {
      jest.spyOn(Math, 'random').mockReturnValue(0.5);
      mockedRequest.mockRejectedValue(new Error('server down'));
      model = new ModelHubModel({ refreshInterval: 10, standby: 'never' });
      await jest.advanceTimersByTimeAsync(100);
      expect(listCalls()).toBe(1);
      expect(model.error).toBe('server down');

      // Without back-off, two minutes would mean 13 requests.
      await jest.advanceTimersByTimeAsync(120000);
      expect(listCalls()).toBeLessThan(8);
      (Math.random as jest.Mock).mockRestore();
    });

    it('stops polling when disposed', async () => {
      model = new ModelHubModel({ refreshInterval: 10, standby: 'never' });
      await jest.advanceTimersByTimeAsync(100);
      model.dispose();
      expect(model.isDisposed).toBe(true);
      await jest.advanceTimersByTimeAsync(60000);
      expect(listCalls()).toBe(1);
    });
  });
});

describe('ModelHubModel stages', () => {
  let model: ModelHubModel;

  beforeEach(() => {
    mockedRequest.mockReset();
    mockedRequest.mockResolvedValue({ models: [] } as any);
    model = new ModelHubModel({ autoStart: false });
  });

  afterEach(() => {
    model.dispose();
  });

  it('promotes with POST models/{name}/stages, then refreshes', async () => {
    await model.promote('fraud', { version: 'v0.0.2', stage: 'prod' });

    expect(mockedRequest).toHaveBeenCalledWith('models/fraud/stages', {
      method: 'POST',
      body: JSON.stringify({ version: 'v0.0.2', stage: 'prod' })
    });
    expect(listCalls()).toBe(1);
  });

  it('demotes with DELETE models/{name}/stages/{stage}', async () => {
    await model.demote('fraud', 'prod');

    expect(mockedRequest).toHaveBeenCalledWith('models/fraud/stages/prod', {
      method: 'DELETE'
    });
    expect(listCalls()).toBe(1);
  });

  it("rejects with the server's message", async () => {
    mockedRequest.mockRejectedValueOnce(
      new Error("No version v9.9.9 of model 'fraud'.")
    );
    await expect(
      model.promote('fraud', { version: 'v9.9.9', stage: 'prod' })
    ).rejects.toThrow("No version v9.9.9 of model 'fraud'.");
  });
});
