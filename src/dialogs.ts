import { IFormField } from './form';
import { IDeployRequest, IExperimentRequest } from './tokens';

/**
 * The choices of a `select` field.
 */
type Choices = { value: string; label: string }[];

/** The condition of the fields only the kubernetes target takes. */
const KUBERNETES = { key: 'target', values: ['kubernetes'] };

/**
 * The options of the kubernetes target the deploy dialog asks for (the others, such as
 * `hpa_max`, stay with the CLI and the REST API). Their values are the server's to check.
 */
const KUBERNETES_OPTIONS: IFormField[] = [
  {
    key: 'namespace',
    label: 'Namespace',
    kind: 'text',
    placeholder: "the target's default",
    showWhen: KUBERNETES
  },
  {
    key: 'context',
    label: 'Kubeconfig context',
    kind: 'text',
    placeholder: 'the current context',
    showWhen: KUBERNETES
  },
  {
    key: 'image',
    label: 'Image',
    kind: 'text',
    placeholder: "the target's default image",
    showWhen: KUBERNETES
  },
  {
    key: 'secret',
    label: 'Secret',
    kind: 'text',
    placeholder: 'none',
    help: 'A Secret of the namespace whose keys the pods get (e.g. DVC remote credentials).',
    showWhen: KUBERNETES
  }
];

/**
 * The fields of the deploy dialog of `model`: the target's own options show only for it.
 */
export function deployFields(
  model: string,
  refs: Choices,
  targets: string[]
): IFormField[] {
  return [
    { key: 'ref', label: 'Version or stage', kind: 'select', options: refs },
    {
      key: 'target',
      label: 'Target',
      kind: 'select',
      options: targets.map(t => ({ value: t, label: t }))
    },
    ...KUBERNETES_OPTIONS,
    { key: 'name', label: 'Deployment name', kind: 'text', value: model },
    { key: 'replicas', label: 'Replicas', kind: 'number', value: '1', min: 1 },
    {
      key: 'port',
      label: 'Port',
      kind: 'number',
      placeholder: 'any free port',
      min: 1,
      help: 'Leave empty to let the server pick a free port.'
    }
  ];
}

/**
 * The body of `POST /deployments` from the deploy dialog's answer: the target options are
 * the ones filled in (hidden fields are empty).
 */
export function deployRequest(
  model: string,
  value: Record<string, string>
): IDeployRequest {
  const options: Record<string, string> = {};
  for (const { key } of KUBERNETES_OPTIONS) {
    if (value[key]) {
      options[key] = value[key];
    }
  }
  return {
    ref: value.ref,
    name: value.name || model,
    target: value.target,
    replicas: Number(value.replicas || '1'),
    ...(value.port ? { port: Number(value.port) } : {}),
    ...(Object.keys(options).length > 0 ? { target_options: options } : {})
  };
}

const SPLIT = { key: 'kind', values: ['split'] };
const CANARY = { key: 'kind', values: ['canary'] };
const GUARDED = { key: 'kind', values: ['split', 'canary'] };

/**
 * The guardrails (`POST .../experiment`'s `guardrails` object) the dialog asks for.
 */
const GUARDRAILS: IFormField[] = [
  {
    key: 'max_error_rate',
    label: 'Guardrail: max error rate (0-1)',
    kind: 'text',
    placeholder: "the server's default",
    showWhen: GUARDED
  },
  {
    key: 'max_p95_seconds',
    label: 'Guardrail: max p95 latency (s)',
    kind: 'text',
    placeholder: "the server's default",
    showWhen: GUARDED
  },
  {
    key: 'min_requests',
    label: 'Guardrail: min requests to judge',
    kind: 'text',
    placeholder: "the server's default",
    showWhen: GUARDED
  }
];

/**
 * The fields of the start-experiment dialog: each kind shows only the fields it takes.
 */
export function experimentFields(challengers: Choices): IFormField[] {
  return [
    {
      key: 'challenger',
      label: 'Challenger',
      kind: 'select',
      options: challengers
    },
    {
      key: 'kind',
      label: 'Kind',
      kind: 'select',
      options: [
        { value: 'split', label: 'A/B split' },
        { value: 'canary', label: 'canary' },
        { value: 'bluegreen', label: 'blue-green' },
        { value: 'shadow', label: 'shadow' }
      ]
    },
    {
      key: 'split',
      label: 'Split (A/B: champion/challenger)',
      kind: 'text',
      placeholder: '50/50',
      showWhen: SPLIT
    },
    {
      key: 'key',
      label: 'Sticky key (request field)',
      kind: 'text',
      placeholder: 'none',
      help: 'A request field, e.g. user_id, that keeps each caller on one variant.',
      showWhen: SPLIT
    },
    {
      key: 'steps',
      label: 'Canary steps (%)',
      kind: 'text',
      placeholder: '5,25,50,100',
      showWhen: CANARY
    },
    {
      key: 'dwell_seconds',
      label: 'Seconds per step',
      kind: 'text',
      placeholder: "the server's default",
      showWhen: CANARY
    },
    ...GUARDRAILS
  ];
}

/**
 * A number typed in a field, or the text itself when it is not one (the server then says
 * what it expects).
 */
function numberOrText(text: string): number | string {
  const value = Number(text);
  return Number.isFinite(value) ? value : text;
}

/**
 * The body of `POST .../experiment` from the dialog's answer: only the fields filled in
 * (hidden fields are empty).
 */
export function experimentRequest(
  value: Record<string, string>
): IExperimentRequest {
  const guardrails: Record<string, number | string> = {};
  for (const { key } of GUARDRAILS) {
    if (value[key]) {
      guardrails[key] = numberOrText(value[key]);
    }
  }
  return {
    challenger: value.challenger,
    kind: value.kind,
    ...(value.split ? { split: value.split } : {}),
    ...(value.key ? { key: value.key } : {}),
    ...(value.steps ? { steps: value.steps } : {}),
    ...(value.dwell_seconds
      ? { dwell_seconds: numberOrText(value.dwell_seconds) }
      : {}),
    ...(Object.keys(guardrails).length > 0 ? { guardrails } : {})
  };
}
