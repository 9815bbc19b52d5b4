"""``KubernetesBackend``: a deployment as a Deployment, a Service and an optional HPA.

``apply`` creates each object, or patches it when it already exists (a 409 on create), then
waits for the rollout as ``kubectl rollout status`` does: the controller has seen the new
generation and every wanted replica is updated and available. A pod of the new template that
cannot run (``CrashLoopBackOff``, ``ImagePullBackOff``, a missing Secret…) fails the rollout at
once, with the pod's reason and the server's last words; the old pods keep serving meanwhile
(``maxUnavailable: 0``). ``delete`` is idempotent (a 404 is fine). ``rollback`` applies an
earlier spec: the hub's git history is the revision list, as on every target.

The cluster is reached through the official client with the user's kubeconfig (its context
from the deployment's options, else the current one; in a pod, the in-cluster account). The
options are the spec's (``target_options``, committed with it): only names (namespace,
context, Secret), no credential is written to the hub or logged.

Traffic experiments: every pod loads every variant and routes in-process with the server's
``--traffic``, so a split, a canary and a shadow route exactly as locally; a policy change is a
new pod template (a rollout). A split's and a canary's guardrails and a canary's steps are
judged by the deployment's experiment controller (``deploy.watch``), which ``apply`` starts as
a detached process **on the machine that deployed**: it reads the pods' ``/metrics`` through the
API server's pod proxy with the user's kubeconfig and acts through the hub (a rollback or a
step is a commit, then a rollout). That is its limit: while that machine is off, or after its
process died, no guardrail is judged and no step taken (``status`` says so in ``controller``);
``modelhub sync-deployments`` starts it again. ``delete`` stops it. A blue-green switch is
refused (see ``traffic_refusal``).

Prediction and outcome logs: each pod writes them into an ``emptyDir``; ``collect_logs``
copies the running pods' chunks to the deployment's runtime folder on this machine before the
A/B and shadow reports, ``quality`` and drift read it (see ``podlogs``: it needs ``create`` on
``pods/exec``, and ``sh``, ``tar`` and ``base64`` in the image). A pod's logs live as long as
the pod: what a pod wrote after the last collection is lost when a rollout or a scale-down
removes it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import logging
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from ...errors import BackendError, InvalidArgument
from ...registry.registry import ModelRegistry
from .. import watch
from ..backend import DeploymentBackend
from ..records import DeploymentStatus
from ..runtime import RuntimeFolder
from ..spec import DeploymentSpec
from ..store import DeploymentStore
from . import podlogs
from .manifests import CONTAINER, CONTAINER_PORT, build_manifests, endpoint, label_selector
from .options import KubernetesOptions, OptionsStore
from .podlogs import PodExec, fetch_archive, unpack_chunks
from .render import hub_git_url
from .status import deployment_status, rollout

DEFAULT_TIMEOUT = 600.0
POLL_INTERVAL = 1.0
FIELD_MANAGER = "jupyter-modelhub"
MERGE_PATCH = "application/merge-patch+json"

log = logging.getLogger(__name__)

#: builds the API client for a deployment's options; tests point it at a mock API server
ClientFactory = Callable[[KubernetesOptions], Any]


def connect(options: KubernetesOptions) -> Any:
    """An ``ApiClient`` for ``options.context`` of the user's kubeconfig (in a pod without a
    kubeconfig: the pod's service account).

    Raises:
        InvalidArgument: the ``kubernetes`` package is not installed.
        BackendError: no kubeconfig, or no such context.
    """
    try:
        from kubernetes import client, config
    except ModuleNotFoundError as exc:
        raise InvalidArgument(
            "The kubernetes target needs the Python package 'kubernetes'.",
            hint="pip install 'jupyter-modelhub[kubernetes]'",
        ) from exc
    kubeconfig = os.environ.get("KUBECONFIG") or str(Path("~/.kube/config").expanduser())
    in_cluster = os.environ.get("KUBERNETES_SERVICE_HOST") and not any(
        Path(p).is_file() for p in kubeconfig.split(os.pathsep)
    )
    try:
        if in_cluster and options.context is None:
            config.load_incluster_config()
            return client.ApiClient()
        return config.new_client_from_config(context=options.context)
    except (config.ConfigException, OSError) as exc:
        where = f"context {options.context!r}" if options.context else "the current context"
        raise BackendError(
            f"Cannot use {where} of the kubeconfig: {exc}",
            hint="Check `kubectl config get-contexts`; choose one with --context.",
        ) from exc


class KubernetesBackend(DeploymentBackend):
    """Deploys on a Kubernetes cluster through the official client."""

    target = "kubernetes"
    # Each pod loads every variant and routes in-process with --traffic, so which variant
    # answers which request is decided as locally. A split's and a canary's guardrails and a
    # canary's steps are judged by the experiment controller, a detached process on the
    # deploying machine (``deploy.watch``, as on docker), through the API server's pod proxy.
    #
    # A blue-green switch is refused: it must move all traffic at once, and a policy change
    # here is a rolling update, during which pods of both templates serve side by side. Doing
    # it right would take a Service per colour and a selector flip, or an in-cluster router
    # (one Deployment per variant behind the model server's traffic code as a proxy, the
    # policy in a ConfigMap it watches); neither is built.
    traffic_refusal = (
        "A blue-green switch must move all traffic at once, and on Kubernetes a policy change "
        "is a rolling update in which old and new pods serve side by side (no per-colour "
        "Service or in-cluster router is built); split, canary and shadow work here."
    )
    traffic_kinds = frozenset({"split", "canary", "shadow"})
    poll_interval = POLL_INTERVAL

    def __init__(
        self,
        registry: ModelRegistry,
        client_factory: ClientFactory | None = None,
        pod_exec: PodExec | None = None,
    ):
        super().__init__(registry)
        self.client_factory: ClientFactory = client_factory or connect
        #: runs a command in a pod (the API server's exec), to copy its logs; tests fake it
        self.pod_exec: PodExec = pod_exec or podlogs.exec_in_pod
        self.options_store = OptionsStore(registry.root)
        self._clients: dict[str | None, Any] = {}

    # -- options ---------------------------------------------------------------------------------
    def check_options(self, given: dict[str, Any]) -> dict[str, Any]:
        """Kubernetes options as a spec records them (see ``KubernetesOptions``).

        Raises:
            InvalidArgument: an unknown option (naming the known ones) or a bad value.
        """
        return KubernetesOptions.check(given)

    def options_of(self, spec: DeploymentSpec) -> KubernetesOptions:
        """The options of ``spec``: its own, else (a deployment made before specs carried
        them) the per-machine file it was made with."""
        if spec.target_options:
            return KubernetesOptions.from_dict(spec.target_options)
        return self.options_store.get(spec.name)

    def options(self, name: str) -> KubernetesOptions:
        """The options of deployment ``name``: those of its latest spec on this target (after
        a rollback to another target, the spec in git is no longer a Kubernetes one)."""
        store = DeploymentStore(self.registry)
        spec = store.get(name)
        if spec is not None and spec.target != self.target:
            earlier = [r.spec for r in store.revisions(name) if r.spec.target == self.target]
            spec = earlier[-1] if earlier else None
        return self.options_of(spec) if spec is not None else self.options_store.get(name)

    # -- the API ---------------------------------------------------------------------------------
    def _client(self, options: KubernetesOptions) -> Any:
        if options.context not in self._clients:
            self._clients[options.context] = self.client_factory(options)
        return self._clients[options.context]

    def _apis(self, options: KubernetesOptions) -> tuple[Any, Any, Any, Any]:
        from kubernetes import client

        api = self._client(options)
        return api, client.AppsV1Api(api), client.CoreV1Api(api), client.AutoscalingV2Api(api)

    # -- apply -----------------------------------------------------------------------------------
    def prepare(self, spec: DeploymentSpec) -> DeploymentSpec:
        return spec if spec.port else spec.replace(port=CONTAINER_PORT)

    def apply(self, spec: DeploymentSpec, timeout: float | None = None) -> None:
        self.check_traffic(spec)
        options = self.options_of(spec)
        docs = build_manifests(spec, options, hub_url=hub_git_url(self.registry, options))
        api, apps, core, scaling = self._apis(options)
        ns = options.namespace
        with _api_errors(f"Deployment {spec.name}", ns):
            from kubernetes import client

            created = _create_or_patch(
                api,
                lambda body: apps.create_namespaced_deployment(
                    ns, client.V1Deployment.from_dict(body), field_manager=FIELD_MANAGER
                ),
                lambda body: apps.patch_namespaced_deployment(
                    spec.name, ns, body, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH
                ),
                docs[0],
            )
            _create_or_patch(
                api,
                lambda body: core.create_namespaced_service(
                    ns, client.V1Service.from_dict(body), field_manager=FIELD_MANAGER
                ),
                lambda body: core.patch_namespaced_service(
                    spec.name, ns, body, field_manager=FIELD_MANAGER, _content_type=MERGE_PATCH
                ),
                docs[1],
            )
            if options.autoscaled:
                _create_or_patch(
                    api,
                    lambda body: scaling.create_namespaced_horizontal_pod_autoscaler(
                        ns,
                        client.V2HorizontalPodAutoscaler.from_dict(body),
                        field_manager=FIELD_MANAGER,
                    ),
                    lambda body: scaling.patch_namespaced_horizontal_pod_autoscaler(
                        spec.name,
                        ns,
                        body,
                        field_manager=FIELD_MANAGER,
                        _content_type=MERGE_PATCH,
                    ),
                    docs[2],
                )
            else:
                _ignore_missing(
                    lambda: scaling.delete_namespaced_horizontal_pod_autoscaler(spec.name, ns)
                )
        generation = int((created.get("metadata") or {}).get("generation") or 0)
        self._wait(spec, options, generation, timeout or DEFAULT_TIMEOUT)
        watch.ensure(self.registry.root, spec)

    # -- the experiment controller (a process on this machine) -------------------------------------
    def resume(self, spec: DeploymentSpec) -> bool:
        """Start the experiment controller again if the spec needs one and it died (or this
        machine was off); ``True`` if it did."""
        options = self.options_of(spec)
        return watch.resume(
            self.registry.root, spec, lambda: self._read(spec.name, options)[0] is not None
        )

    def _wait(
        self, spec: DeploymentSpec, options: KubernetesOptions, generation: int, timeout: float
    ) -> None:
        """Block until the rollout of ``generation`` is done; raise with the pods' reason."""
        deadline = time.monotonic() + timeout
        while True:
            deployment, pods = self._read(spec.name, options)
            if deployment is None:
                raise BackendError(
                    f"Deployment {spec.name} disappeared from namespace {options.namespace} "
                    "during its rollout."
                )
            state = rollout(deployment, pods, generation)
            if state.progress == "done":
                return
            if state.progress == "failed":
                raise BackendError(
                    f"Deployment {spec.name} ({spec.version_ref}) failed to roll out: "
                    f"{state.message}",
                    hint=f"Pods of the previous revision keep serving. See `modelhub logs "
                    f"{spec.name}`; `modelhub rollback {spec.name}` goes back.",
                )
            if time.monotonic() > deadline:
                raise BackendError(
                    f"Deployment {spec.name} is not ready after {timeout:.0f} s: {state.message}.",
                    hint=f"See `modelhub status {spec.name}` and `kubectl -n "
                    f"{options.namespace} describe deployment {spec.name}`.",
                )
            time.sleep(self.poll_interval)

    def _read(
        self, name: str, options: KubernetesOptions
    ) -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
        """The Deployment (``None`` if there is none) and its pods, as the API's JSON."""
        api, apps, core, _ = self._apis(options)
        ns = options.namespace
        with _api_errors(f"Deployment {name}", ns):
            deployment = _ignore_missing(lambda: apps.read_namespaced_deployment(name, ns))
            if deployment is None:
                return None, []
            pods = core.list_namespaced_pod(ns, label_selector=label_selector(name)).items
        return api.sanitize_for_serialization(deployment), [
            api.sanitize_for_serialization(p) for p in pods
        ]

    # -- status, logs, delete --------------------------------------------------------------------
    def status(self, spec: DeploymentSpec, revision: int) -> DeploymentStatus:
        options = self.options_of(spec)
        try:
            deployment, pods = self._read(spec.name, options)
        except BackendError as exc:
            status = deployment_status(
                spec,
                endpoint=endpoint(spec, options),
                revision=revision,
                deployment=None,
                pods=[],
            )
            return dataclasses.replace(status, phase="failed", last_error=exc.message)
        status = deployment_status(
            spec,
            endpoint=endpoint(spec, options),
            revision=revision,
            deployment=deployment,
            pods=pods,
        )
        controller, missing = watch.controller_status(
            RuntimeFolder(self.registry.root, spec.name), spec, running=deployment is not None
        )
        return dataclasses.replace(
            status, controller=controller, last_error=missing or status.last_error
        )

    def collect_logs(self, spec: DeploymentSpec) -> int:
        """Copy the chunks of the prediction and outcome logs of every running pod of
        ``spec`` that are not here yet into the deployment's runtime folder (see ``podlogs``);
        how many were copied. Needs ``create`` on ``pods/exec``; a pod that cannot be read
        (no right, no ``tar`` in its image, gone meanwhile) is skipped with a warning."""
        options = self.options_of(spec)
        try:
            _, _, core, _ = self._apis(options)
            with _api_errors(f"Deployment {spec.name}", options.namespace):
                pods = core.list_namespaced_pod(
                    options.namespace, label_selector=label_selector(spec.name)
                ).items
        except BackendError as exc:
            log.warning("Could not list the pods of deployment %s: %s", spec.name, exc)
            return 0
        folder = RuntimeFolder(self.registry.root, spec.name).predictions
        copied = 0
        for pod in sorted(pods, key=lambda p: str(p.metadata.name)):
            if pod.status is None or pod.status.phase != "Running":
                continue
            name = str(pod.metadata.name)
            try:
                archive = fetch_archive(self.pod_exec, core, options.namespace, name)
                copied += unpack_chunks(archive, folder, name)
            except Exception as exc:  # one pod must not keep the others' logs from a report
                why = _exec_failure(exc)
                log.warning(
                    "Could not collect the logs of pod %s of deployment %s: %s%s",
                    name,
                    spec.name,
                    why,
                    # a refused exec is a 403 (a handshake's status 0 says it in its reason)
                    " (collecting needs `create` on pods/exec)" if "403" in why else "",
                )
        return copied

    def logs(self, name: str, tail: int = 100) -> list[str]:
        options = self.options(name)
        _, _, core, _ = self._apis(options)
        ns = options.namespace
        lines: list[str] = []
        with _api_errors(f"Deployment {name}", ns):
            pods = core.list_namespaced_pod(ns, label_selector=label_selector(name)).items
            for pod_name in sorted(p.metadata.name for p in pods):
                answer = _ignore_missing(
                    functools.partial(
                        core.read_namespaced_pod_log,
                        pod_name,
                        ns,
                        container=CONTAINER,
                        tail_lines=tail,
                        _preload_content=False,  # raw text, whatever its content type
                    ),
                    also=(400,),  # the container has not started yet
                )
                text = answer.data.decode("utf-8", "replace") if answer is not None else ""
                lines += [f"[{pod_name}] {line}" for line in text.splitlines()]
        return lines[-tail:] if tail else []

    def delete(self, name: str) -> bool:
        watch.stop(self.registry.root, name)
        options = self.options(name)
        _, apps, core, scaling = self._apis(options)
        ns = options.namespace
        with _api_errors(f"Deployment {name}", ns):
            found = [
                _ignore_missing(
                    lambda: scaling.delete_namespaced_horizontal_pod_autoscaler(name, ns)
                ),
                _ignore_missing(lambda: core.delete_namespaced_service(name, ns)),
                _ignore_missing(
                    lambda: apps.delete_namespaced_deployment(
                        name, ns, propagation_policy="Background"
                    )
                ),
            ]
        self.options_store.delete(name)  # a file left by an older version, if any
        return any(f is not None for f in found)


def _create_or_patch(
    api: Any, create: Callable[[Any], Any], patch: Callable[[Any], Any], body: dict[str, Any]
) -> dict[str, Any]:
    """Create ``body``; if it exists already (409), patch it to ``body`` (a JSON merge patch:
    lists such as containers and args are replaced whole). Returns the object as stored."""
    from kubernetes.client import ApiException

    try:
        result = create(body)
    except ApiException as exc:
        if exc.status != 409:
            raise
        result = patch(body)
    stored: dict[str, Any] = api.sanitize_for_serialization(result)
    return stored


def _ignore_missing(call: Callable[[], Any], also: tuple[int, ...] = ()) -> Any:
    """``call()``, or ``None`` when what it reads or deletes is not there (404)."""
    from kubernetes.client import ApiException

    try:
        return call()
    except ApiException as exc:
        if exc.status == 404 or exc.status in also:
            return None
        raise


@contextlib.contextmanager
def _api_errors(what: str, namespace: str) -> Iterator[None]:
    """API failures as ``BackendError`` with the server's own message (never a credential:
    only the status, reason and message of the API's answer are kept)."""
    from kubernetes.client import ApiException

    try:
        yield
    except ApiException as exc:
        message = _api_message(exc)
        hint = None
        if exc.status in (401, 403):
            hint = "Check your kubeconfig's user and its RBAC rights in this namespace."
        elif exc.status == 404:
            hint = f"Does namespace {namespace} exist? (`kubectl create namespace {namespace}`)"
        raise BackendError(f"{what}: the Kubernetes API said {message}", hint=hint) from None
    except OSError as exc:  # urllib3 connection errors are OSErrors
        raise BackendError(
            f"{what}: cannot reach the Kubernetes API: {exc}",
            hint="Is the cluster up, and the kubeconfig's context the right one?",
        ) from None
    except Exception as exc:
        if type(exc).__module__.startswith("urllib3"):
            raise BackendError(f"{what}: cannot reach the Kubernetes API: {exc}") from None
        raise


def _exec_failure(exc: Exception) -> str:
    """What went wrong reading a pod's logs, in one line (an API answer: its status and
    message, never the request)."""
    from kubernetes.client import ApiException

    if isinstance(exc, ApiException):
        return f"the Kubernetes API said {_api_message(exc)}"
    return f"{type(exc).__name__}: {exc}"


def _api_message(exc: Any) -> str:
    text = f"{exc.status} {exc.reason}"
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return text
    if isinstance(body, dict) and body.get("message"):
        text += f": {body['message']}"
    return text
