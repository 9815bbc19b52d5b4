"""The Kubernetes objects of a deployment: a Deployment, a Service and, optionally, an HPA.

``build_manifests(spec, options, hub_url=...)`` turns a ``DeploymentSpec`` and its
``KubernetesOptions`` into plain dicts, the same ones ``KubernetesBackend`` sends to the API
server and ``modelhub manifests`` prints for GitOps (Argo CD, Flux). They validate against the
official schemas (``kubernetes-validate``, strict).

Every pod runs the model server, which loads every variant of the spec (champion and
challengers) and routes between them in-process with ``--traffic``, exactly as a local
replica does. A new version, new server options or a new traffic policy is a new pod template,
so it reaches the pods through the Deployment's rolling update (``maxUnavailable: 0``: the old
pods serve until new ones are ready).

The model reaches the pod in one of two ways:

- ``source="dvc"``: an init container clones the hub's git repository into an ``emptyDir``
  and pulls each served version's artifact from the hub's DVC remote (``modelhub pull``, which
  drives DVC), with the remote's credentials from a Secret (``envFrom``); the model server
  then verifies every byte against its recorded md5 as it loads;
- ``source="image"``: the hub (with the versions' artifacts in its DVC cache) is baked into the
  image at ``hub_path``; there is no init container.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

import yaml

from ...registry.registry import RUNTIME_DIR
from ...serving.contract import server_command
from ..spec import DeploymentSpec
from .options import KubernetesOptions

MANAGED_BY = "jupyter-modelhub"
COMPONENT = "model-server"
CONTAINER = "server"
INIT_CONTAINER = "fetch-model"
CONTAINER_PORT = 8080
SERVICE_PORT = 80
#: a label on the pod template: which template a pod was made from (failures of the pods of
#: the template being rolled out are reported; those of older ones are not)
TEMPLATE_LABEL = "modelhub.jupyter.org/template"
HUB_URL_ENV = "MODELHUB_HUB_URL"
PREDICTIONS_DIR = "/var/lib/modelhub/predictions"
USER_ID = 1000


def labels(spec: DeploymentSpec) -> dict[str, str]:
    """The ``app.kubernetes.io/*`` labels of every object of ``spec``."""
    return {
        "app.kubernetes.io/name": spec.model,
        "app.kubernetes.io/instance": spec.name,
        "app.kubernetes.io/version": spec.version,
        "app.kubernetes.io/component": COMPONENT,
        "app.kubernetes.io/managed-by": MANAGED_BY,
    }


def selector(name: str) -> dict[str, str]:
    """The pods of deployment ``name``: the Deployment's and the Service's selector (it never
    changes, as Kubernetes requires, so it names no version)."""
    return {"app.kubernetes.io/instance": name, "app.kubernetes.io/managed-by": MANAGED_BY}


def label_selector(name: str) -> str:
    """``selector(name)`` as the API's ``labelSelector`` query."""
    return ",".join(f"{k}={v}" for k, v in selector(name).items())


def build_manifests(
    spec: DeploymentSpec, options: KubernetesOptions, *, hub_url: str | None = None
) -> list[dict[str, Any]]:
    """The Deployment, the Service and (when ``options.hpa_max``) the autoscaler of ``spec``.

    Args:
        hub_url: the hub's git URL, cloned by the init container (``source="dvc"``); ``None``
            takes ``MODELHUB_HUB_URL`` from ``options.secret``.
    """
    docs = [deployment(spec, options, hub_url=hub_url), service(spec, options)]
    if options.autoscaled:
        docs.append(autoscaler(spec, options))
    return docs


def _metadata(spec: DeploymentSpec, options: KubernetesOptions) -> dict[str, Any]:
    return {"name": spec.name, "namespace": options.namespace, "labels": labels(spec)}


def deployment(
    spec: DeploymentSpec, options: KubernetesOptions, *, hub_url: str | None = None
) -> dict[str, Any]:
    hub = options.hub_path
    template_spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": USER_ID,
            "runAsGroup": USER_ID,
            "fsGroup": USER_ID,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [_server_container(spec, options)],
        "volumes": [
            {"name": "tmp", "emptyDir": {}},
            {"name": "predictions", "emptyDir": {}},
        ],
        "terminationGracePeriodSeconds": 30,
    }
    if options.source == "dvc":
        template_spec["initContainers"] = [_fetch_container(spec, options, hub_url)]
        template_spec["volumes"].append({"name": "hub", "emptyDir": {}})
    else:  # the baked-in hub is read-only: its runtime folder (tag caches) is not
        template_spec["volumes"].append({"name": "runtime", "emptyDir": {}})
    template_labels = {**labels(spec)}
    template_annotations = {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(CONTAINER_PORT),
        "prometheus.io/path": "/metrics",
        "modelhub.jupyter.org/hub": hub,
    }
    template: dict[str, Any] = {
        "metadata": {"labels": template_labels, "annotations": template_annotations},
        "spec": template_spec,
    }
    # The template's own digest, as a label on its pods (computed before it is added).
    template_labels[TEMPLATE_LABEL] = template_hash(template)
    body: dict[str, Any] = {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, options),
        "spec": {
            "selector": {"matchLabels": selector(spec.name)},
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "minReadySeconds": 0,
            "progressDeadlineSeconds": 600,
            "revisionHistoryLimit": 5,
            "template": template,
        },
    }
    if not options.autoscaled:  # with an autoscaler, the autoscaler owns the replica count
        body["spec"]["replicas"] = spec.replicas
    return body


def template_hash(template: dict[str, Any]) -> str:
    text = json.dumps(template, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _server_args(spec: DeploymentSpec, options: KubernetesOptions) -> list[str]:
    """The model server's command line: the champion, its options and the traffic policy."""
    return server_command(
        spec.version_ref,
        options.hub_path,
        python="python",
        host="0.0.0.0",  # a pod serves on its own address
        port=CONTAINER_PORT,
        admin_port="off",  # probes use the main port; policies change by rollout
        deployment=spec.name,
        log_dir=PREDICTIONS_DIR,
        traffic=spec.traffic_json() if spec.traffic is not None and spec.traffic.running else None,
        **spec.server,
    )


def _resources(options: KubernetesOptions) -> dict[str, Any]:
    requests = {"cpu": options.cpu_request, "memory": options.memory_request}
    limits = {"cpu": options.cpu_limit, "memory": options.memory_limit}
    out: dict[str, Any] = {"requests": {k: v for k, v in requests.items() if v is not None}}
    limits = {k: v for k, v in limits.items() if v is not None}
    if limits:
        out["limits"] = limits
    return out


def _container_security() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def _common_env() -> list[dict[str, Any]]:
    return [
        {"name": "HOME", "value": "/tmp"},
        {"name": "DVC_NO_ANALYTICS", "value": "1"},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]


def _server_container(spec: DeploymentSpec, options: KubernetesOptions) -> dict[str, Any]:
    argv = _server_args(spec, options)
    mounts = [
        {"name": "tmp", "mountPath": "/tmp"},
        {"name": "predictions", "mountPath": PREDICTIONS_DIR},
    ]
    if options.source == "dvc":
        mounts.append({"name": "hub", "mountPath": options.hub_path})
    else:
        mounts.append({"name": "runtime", "mountPath": f"{options.hub_path}/{RUNTIME_DIR}"})
    return {
        "name": CONTAINER,
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": argv[:3],
        "args": argv[3:],
        "ports": [{"name": "http", "containerPort": CONTAINER_PORT, "protocol": "TCP"}],
        "env": _common_env(),
        "resources": _resources(options),
        "startupProbe": _probe("/v2/health/live", period=2, failures=150),
        "readinessProbe": _probe("/v2/health/ready", period=5, failures=3),
        "livenessProbe": _probe("/v2/health/live", period=10, failures=3),
        "securityContext": _container_security(),
        "volumeMounts": mounts,
        # a server that cannot load its model says why on its last lines: the pod's status
        # carries them, so a failed rollout reports the server's own reason
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 2,
        "failureThreshold": failures,
    }


def fetch_script(spec: DeploymentSpec, hub_path: str) -> str:
    """The init container's shell script: clone the hub, pull every served version with DVC."""
    refs = " ".join(f"{spec.model}@{version}" for version in sorted(set(spec.variants.values())))
    return (
        "set -eu\n"
        f'if [ -z "${{{HUB_URL_ENV}:-}}" ]; then\n'
        f'  echo "{HUB_URL_ENV} is not set: give --hub-url or put it in the Secret" >&2\n'
        "  exit 2\n"
        "fi\n"
        f'git clone --quiet "${HUB_URL_ENV}" {hub_path}\n'
        f"for ref in {refs}; do\n"
        f'  python -m jupyter_modelhub.cli --hub {hub_path} pull "$ref"\n'
        "done\n"
    )


def _fetch_container(
    spec: DeploymentSpec, options: KubernetesOptions, hub_url: str | None
) -> dict[str, Any]:
    env = _common_env()
    if hub_url:
        env.append({"name": HUB_URL_ENV, "value": hub_url})
    container: dict[str, Any] = {
        "name": INIT_CONTAINER,
        "image": options.image,
        "imagePullPolicy": options.image_pull_policy,
        "command": ["sh", "-c", fetch_script(spec, options.hub_path)],
        "env": env,
        "resources": _resources(options),
        "securityContext": _container_security(),
        "volumeMounts": [
            {"name": "tmp", "mountPath": "/tmp"},
            {"name": "hub", "mountPath": options.hub_path},
        ],
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if options.secret:
        container["envFrom"] = [{"secretRef": {"name": options.secret}}]
    return container


def service(spec: DeploymentSpec, options: KubernetesOptions) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, options),
        "spec": {
            "type": options.service_type,
            "selector": selector(spec.name),
            "ports": [
                {"name": "http", "port": SERVICE_PORT, "targetPort": "http", "protocol": "TCP"}
            ],
        },
    }


def autoscaler(spec: DeploymentSpec, options: KubernetesOptions) -> dict[str, Any]:
    assert options.hpa_max is not None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _metadata(spec, options),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": spec.name},
            "minReplicas": (
                options.hpa_min
                if options.hpa_min is not None
                else min(spec.replicas, options.hpa_max)
            ),
            "maxReplicas": options.hpa_max,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": options.hpa_cpu},
                    },
                }
            ],
        },
    }


def endpoint(spec: DeploymentSpec, options: KubernetesOptions) -> str:
    """The Service's address inside the cluster."""
    return f"http://{spec.name}.{options.namespace}.svc:{SERVICE_PORT}"


def to_yaml(docs: list[dict[str, Any]]) -> str:
    """``docs`` as one multi-document YAML stream, as ``kubectl apply -f`` reads it."""
    return yaml.safe_dump_all(docs, sort_keys=False, default_flow_style=False)
