import {
  deployFields,
  deployRequest,
  experimentFields,
  experimentRequest
} from '../dialogs';
import { FormBody } from '../form';

const REFS = [{ value: 'fraud@v0.0.1', label: 'v0.0.1' }];

/**
 * Set a field of a form body as a user would (a change event follows).
 */
function set(body: FormBody, key: string, value: string): void {
  const input = body.node.querySelector(`[name="${key}"]`) as
    HTMLInputElement | HTMLSelectElement;
  input.value = value;
  input.dispatchEvent(new Event('change'));
}

describe('the deploy dialog', () => {
  const KUBERNETES = ['namespace', 'context', 'image', 'secret'];

  it('shows the kubernetes options only for the kubernetes target', () => {
    const body = new FormBody(
      deployFields('fraud', REFS, ['local', 'docker', 'kubernetes'])
    );
    for (const key of KUBERNETES) {
      expect(body.isShown(key)).toBe(false);
    }
    set(body, 'target', 'kubernetes');
    for (const key of KUBERNETES) {
      expect(body.isShown(key)).toBe(true);
    }
    set(body, 'namespace', 'ml');
    set(body, 'image', 'reg/modelhub:1');
    expect(deployRequest('fraud', body.getValue())).toEqual({
      ref: 'fraud@v0.0.1',
      name: 'fraud',
      target: 'kubernetes',
      replicas: 1,
      target_options: { namespace: 'ml', image: 'reg/modelhub:1' }
    });

    // Typed, then another target chosen: the options are not sent.
    set(body, 'target', 'local');
    expect(body.isShown('namespace')).toBe(false);
    const request = deployRequest('fraud', body.getValue());
    expect(request.target).toBe('local');
    expect(request.target_options).toBeUndefined();
  });

  it('sends the port only when given', () => {
    const body = new FormBody(deployFields('fraud', REFS, ['local']));
    set(body, 'name', 'svc');
    set(body, 'port', '8200');
    expect(deployRequest('fraud', body.getValue())).toEqual({
      ref: 'fraud@v0.0.1',
      name: 'svc',
      target: 'local',
      replicas: 1,
      port: 8200
    });
  });
});

describe('the start-experiment dialog', () => {
  const shown = (body: FormBody) =>
    [
      'split',
      'key',
      'steps',
      'dwell_seconds',
      'max_error_rate',
      'max_p95_seconds',
      'min_requests'
    ].filter(key => body.isShown(key));

  it('shows the fields each kind takes', () => {
    const body = new FormBody(experimentFields(REFS));
    expect(shown(body)).toEqual([
      'split',
      'key',
      'max_error_rate',
      'max_p95_seconds',
      'min_requests'
    ]);
    set(body, 'kind', 'canary');
    expect(shown(body)).toEqual([
      'steps',
      'dwell_seconds',
      'max_error_rate',
      'max_p95_seconds',
      'min_requests'
    ]);
    set(body, 'kind', 'bluegreen');
    expect(shown(body)).toEqual([]);
    set(body, 'kind', 'shadow');
    expect(shown(body)).toEqual([]);
  });

  it('sends what is filled in of the kind chosen', () => {
    const body = new FormBody(experimentFields(REFS));
    set(body, 'split', '80/20');
    set(body, 'key', 'user_id');
    set(body, 'max_error_rate', '0.1');
    expect(experimentRequest(body.getValue())).toEqual({
      challenger: 'fraud@v0.0.1',
      kind: 'split',
      split: '80/20',
      key: 'user_id',
      guardrails: { max_error_rate: 0.1 }
    });

    set(body, 'kind', 'canary');
    set(body, 'steps', '10,50,100');
    set(body, 'dwell_seconds', '60');
    set(body, 'min_requests', 'many');
    expect(experimentRequest(body.getValue())).toEqual({
      challenger: 'fraud@v0.0.1',
      kind: 'canary',
      steps: '10,50,100',
      dwell_seconds: 60,
      // not a number: sent as typed, for the server to say what it expects
      guardrails: { max_error_rate: 0.1, min_requests: 'many' }
    });

    set(body, 'kind', 'shadow');
    expect(experimentRequest(body.getValue())).toEqual({
      challenger: 'fraud@v0.0.1',
      kind: 'shadow'
    });
  });
});
