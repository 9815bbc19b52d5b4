import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

import { IErrorBody } from './tokens';

/**
 * Base path of the ModelHub REST API, relative to the server's base URL.
 */
export const API_NAMESPACE = 'modelhub/api';

/**
 * An error answered by the ModelHub REST API.
 *
 * Its `message` is the server's `message` field; `code` is its `error` field.
 */
export class ModelHubAPIError extends ServerConnection.ResponseError {
  constructor(response: Response, message: string, code: string) {
    super(response, message);
    this.name = 'ModelHubAPIError';
    this.code = code;
  }

  /** Machine-readable error code, e.g. `RESOURCE_DOES_NOT_EXIST`. */
  readonly code: string;
}

/**
 * Call the ModelHub REST API.
 *
 * @param endPoint API path under `modelhub/api`, e.g. `models`.
 * @param init Initial values for the request (method, body...).
 * @returns The decoded JSON body of the response.
 * @throws ModelHubAPIError carrying the server's message when the status is not 2xx.
 * @throws ServerConnection.NetworkError when the server cannot be reached.
 */
export async function requestAPI<T>(
  endPoint = '',
  init: RequestInit = {}
): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const requestUrl = URLExt.join(settings.baseUrl, API_NAMESPACE, endPoint);

  let response: Response;
  try {
    response = await ServerConnection.makeRequest(requestUrl, init, settings);
  } catch (error) {
    throw new ServerConnection.NetworkError(error as TypeError);
  }

  const text = await response.text();
  let data: any = text;
  if (text.length > 0) {
    try {
      data = JSON.parse(text);
    } catch {
      // Not JSON (e.g. an HTML error page from a proxy): keep the text.
    }
  }

  if (!response.ok) {
    const body = (
      typeof data === 'object' && data !== null ? data : {}
    ) as Partial<IErrorBody>;
    const message =
      body.message ||
      (typeof data === 'string' && data) ||
      `${response.status} ${response.statusText}`;
    throw new ModelHubAPIError(response, message, body.error ?? 'UNKNOWN');
  }

  return data as T;
}
