import { ServerConnection } from '@jupyterlab/services';

import { ModelHubAPIError, requestAPI } from '../request';

/** A minimal stand-in for a fetch Response. */
function fakeResponse(status: number, body: string): Response {
  return {
    ok: status >= 200 && status < 300,
    status,
    statusText: status === 404 ? 'Not Found' : 'Error',
    text: async () => body,
    headers: { get: () => null }
  } as unknown as Response;
}

describe('requestAPI', () => {
  let makeRequest: jest.SpyInstance;

  beforeEach(() => {
    makeRequest = jest.spyOn(ServerConnection, 'makeRequest');
  });

  afterEach(() => {
    makeRequest.mockRestore();
  });

  it('calls modelhub/api under the base URL and decodes the JSON body', async () => {
    makeRequest.mockResolvedValue(fakeResponse(200, '{"models": []}'));

    const body = await requestAPI<{ models: unknown[] }>('models');

    expect(body).toEqual({ models: [] });
    const [url, init] = makeRequest.mock.calls[0];
    expect(url).toMatch(/\/modelhub\/api\/models$/);
    expect(init).toEqual({});
  });

  it("throws a ModelHubAPIError carrying the server's message and code", async () => {
    makeRequest.mockResolvedValue(
      fakeResponse(
        404,
        JSON.stringify({
          error: 'RESOURCE_DOES_NOT_EXIST',
          message: "No model named 'nope'"
        })
      )
    );

    const error = (await requestAPI('models/nope').catch(
      reason => reason
    )) as ModelHubAPIError;

    expect(error).toBeInstanceOf(ModelHubAPIError);
    expect(error.message).toBe("No model named 'nope'");
    expect(error.code).toBe('RESOURCE_DOES_NOT_EXIST');
    expect(error.response.status).toBe(404);
  });

  it('uses a text body or the status when the error is not JSON', async () => {
    makeRequest.mockResolvedValueOnce(fakeResponse(502, 'Bad gateway'));
    await expect(requestAPI('models')).rejects.toThrow('Bad gateway');

    makeRequest.mockResolvedValueOnce(fakeResponse(404, ''));
    await expect(requestAPI('models')).rejects.toThrow('404 Not Found');
  });

  it('wraps a failed connection in a NetworkError', async () => {
    makeRequest.mockRejectedValue(new TypeError('Failed to fetch'));
    await expect(requestAPI('models')).rejects.toBeInstanceOf(
      ServerConnection.NetworkError
    );
  });
});
