"""``Hub``: the one API behind every surface (magics, widgets, REST, CLI, sidebar).

A hub is a git repository with DVC initialised. ``Hub()`` opens the default hub:
``$MODELHUB_HUB`` if set, else ``~/modelhub``. Adapters parse their input, make one ``Hub`` call
and render the result; rules live here and below, never in an adapter.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deploy import Deployments, DeploymentStatus, Revision
from .errors import (
    AlreadyExists,
    BackendError,
    HubNotFound,
    InvalidArgument,
    ModelHubError,
    NotFound,
)
from .experiments.policy import Guardrails, TrafficPolicy
from .models import HistoryEvent, ModelSummary, ModelVersion
from .registry.doctor import DoctorReport, run_doctor
from .registry.dvcstore import DvcStore, atomic_write
from .registry.gitrepo import GitRepo
from .registry.refs import Bump
from .registry.registry import RUNTIME_DIR, ModelRegistry, ProgressCallback

if TYPE_CHECKING:  # imported on first use (see Hub._experiments)
    from .deploy.docker import BuiltImage
    from .deploy.experiments import Experiments
    from .experiments.analysis import ExperimentAnalysis
    from .experiments.quality import QualityTimeline
    from .experiments.shadow import ShadowReport
    from .experiments.sizing import SampleSizePlan
    from .monitoring.alerts import AlertThresholds
    from .monitoring.drift import DriftOptions
    from .monitoring.metrics import DriftMetrics
    from .monitoring.notify import AlertLoop, Notifier
    from .monitoring.profile import ReferenceProfile
    from .monitoring.records import DriftReport
    from .monitoring.scrape import HealthPoint, Scrape
    from .monitoring.service import DeploymentDrift, DriftMonitor, DriftSummary

log = logging.getLogger(__name__)

HUB_ENV = "MODELHUB_HUB"
DEFAULT_HUB = Path("~/modelhub")

_HUB_README = """# A jupyter-modelhub hub

This git repository, with DVC initialised, holds model versions registered with
[jupyter-modelhub](https://pypi.org/project/jupyter-modelhub/).

- `models/NAME/meta.yaml`: metadata of a version; `models/NAME/artifact.dvc`: its DVC record.
- Versions are git tags `NAME@vX.Y.Z`, stages are `NAME#STAGE#N` (GTO's format): `gto show`,
  `dvc artifacts get` and DVC Studio read this registry as it is.
- `.modelhub/` holds local runtime state and is not versioned.
"""


def default_hub_path() -> Path:
    """Where the hub is when nobody says: ``$MODELHUB_HUB``, else ``~/modelhub``."""
    return Path(os.environ.get(HUB_ENV) or DEFAULT_HUB).expanduser()


def is_hub(path: Path) -> bool:
    return (path / ".git").exists() and (path / ".dvc").is_dir()


class Hub:
    """A model hub on disk. Open one with ``Hub(path)``, create one with ``Hub.init(path)``."""

    def __init__(self, path: str | os.PathLike[str] | None = None) -> None:
        root = Path(path).expanduser() if path is not None else default_hub_path()
        if not is_hub(root):
            where = "" if path is None else f" {root}"
            raise HubNotFound(
                f"No model hub at {root}.",
                hint=f"Create one with `modelhub init{where}` (or `%modelhub init{where}` in a "
                f"notebook), or point {HUB_ENV} at an existing hub.",
            )
        self.path = root.resolve()
        self.registry = ModelRegistry(self.path)
        self._deployments = Deployments(self.registry)
        self._experiments_service: Experiments | None = None
        self._drift_service: DriftMonitor | None = None

    def __repr__(self) -> str:
        return f"Hub({str(self.path)!r})"

    # -- creating ----------------------------------------------------------------------------------
    @classmethod
    def init(
        cls,
        path: str | os.PathLike[str] | None = None,
        remote: str | None = None,
        exist_ok: bool = False,
    ) -> Hub:
        """Create a hub (git + DVC) at ``path``, optionally with a default DVC remote."""
        root = Path(path).expanduser() if path is not None else default_hub_path()
        if is_hub(root):
            if not exist_ok:
                raise AlreadyExists(
                    f"A hub already exists at {root}.", hint="Open it with Hub(path) instead."
                )
            hub = cls(root)
            if remote and remote not in hub.registry.dvc.remotes().values():
                hub._add_remote(remote)
            return hub
        git = GitRepo(root)
        if not git.is_repo():
            if root.exists() and any(root.iterdir()):
                raise AlreadyExists(
                    f"{root} exists and is not empty.",
                    hint="Choose a new folder, or an existing git repository to turn into a hub.",
                )
            git = GitRepo.init(root)
        DvcStore.init(root)
        ignore = root / ".gitignore"
        lines = ignore.read_text().splitlines() if ignore.exists() else []
        if f"/{RUNTIME_DIR}/" not in lines:
            lines.append(f"/{RUNTIME_DIR}/")
            atomic_write(ignore, "\n".join(lines) + "\n")
        readme = root / "README.md"
        if not readme.exists():
            readme.write_text(_HUB_README)
        git.commit_all("Initialise a jupyter-modelhub hub")
        hub = cls(root)
        if remote:
            hub._add_remote(remote)
        return hub

    def _add_remote(self, url: str) -> None:
        with self.registry.lock():
            self.registry.dvc.add_remote(url)
            self.registry.git.commit_paths([".dvc/config"], "Set the hub's DVC remote")

    # -- registry ----------------------------------------------------------------------------------
    def register(
        self,
        model: Any,
        name: str,
        *,
        version: str | None = None,
        bump: Bump = "patch",
        sample: Any = None,
        reference: Any = None,
        data: Any = None,
        metrics: dict[str, float] | None = None,
        params: dict[str, Any] | None = None,
        description: str = "",
        labels: Iterable[str] = (),
        onnx: bool = False,
        notebook: str | None = None,
        reference_rows: int = 100_000,
        progress: ProgressCallback | None = None,
    ) -> ModelVersion:
        """Register ``model`` (an estimator, an ONNX model, or a file/folder path) as a version.

        Args:
            model: a fitted scikit-learn estimator or any joblib-serialisable object, an
                ``onnx.ModelProto``, or a path to a ``.joblib``/``.pkl``/``.onnx`` file or a folder.
            name: the model's name (lowercase letters, digits, ``-``, ``_``).
            version: an explicit ``vX.Y.Z``; by default the latest version bumped by ``bump``.
            sample: example input (DataFrame or array) from which the signature is inferred.
            reference: training features; a sample of it is stored for drift detection.
            data: the training data (a path or an in-memory table) whose hash is recorded.
            onnx: also convert a scikit-learn model to ONNX and keep both.

        Raises:
            InvalidArgument: a bad name, version or option, or a model joblib cannot save.
            AlreadyExists: ``version`` is already registered.
        """
        registered = self.registry.register(
            model,
            name,
            version=version,
            bump=bump,
            sample=sample,
            reference=reference,
            data=data,
            metrics=metrics,
            params=params,
            description=description,
            labels=labels,
            onnx=onnx,
            notebook=notebook,
            reference_rows=reference_rows,
            progress=progress,
        )
        if reference is not None and registered.meta.reference is not None:
            self._cache_drift_profile(registered)
        return registered

    def ls(self) -> list[ModelSummary]:
        """Every model: latest version, number of versions, who holds each stage."""
        return self.registry.ls()

    def show(self, ref: str, at: datetime | None = None) -> ModelVersion:
        """The full record of ``name``, ``name@v1.2.0``, ``name@latest`` or ``name#stage``.

        With ``at``, a stage reference resolves as the hub was at that time.
        """
        return self.registry.show(ref, at=at)

    def versions(self, name: str) -> list[ModelVersion]:
        """Every live version of ``name``, newest first."""
        return self.registry.versions(name)

    def history(self, name: str) -> list[HistoryEvent]:
        """Registrations and stage changes of ``name``, oldest first, with who and when."""
        return self.registry.history(name)

    def load(self, ref: str) -> Any:
        """The live model of ``ref`` after verifying its bytes against the DVC record."""
        return self.registry.load(ref)

    def artifact_path(self, ref: str) -> Path:
        """A verified local copy of the artifact folder of ``ref``."""
        return self.registry.checkout(self.registry.show(ref))

    def reference_data(self, ref: str) -> Any:
        """The reference sample stored with ``ref`` (a pandas DataFrame)."""
        return self.registry.reference_data(ref)

    def promote(
        self, ref: str, stage: str, message: str | None = None, *, roll: bool = False
    ) -> HistoryEvent:
        """Put the version ``ref`` into ``stage`` (it replaces the stage's previous holder).

        With ``roll``, deployments that follow this stage roll to the new holder before this
        returns (zero-downtime); the others follow at the next ``sync_deployments()``.

        Raises:
            BackendError: with ``roll``, a following deployment did not roll (the promotion
                itself is done, and that deployment keeps serving its previous version).
        """
        event = self.registry.promote(ref, stage, message)
        if roll:
            self._deployments.sync(model=event.name, stage=stage)
        return event

    def demote(self, ref: str, stage: str, message: str | None = None) -> HistoryEvent:
        """Take ``stage`` away from the version ``ref`` (or from the stage's current holder)."""
        return self.registry.demote(ref, stage, message)

    def deprecate(self, name: str, message: str | None = None) -> HistoryEvent:
        """Mark the model ``name`` as deprecated."""
        return self.registry.deprecate(name, message)

    def deregister(self, ref: str, message: str | None = None) -> HistoryEvent:
        """Withdraw one version; its history is kept."""
        return self.registry.deregister(ref, message)

    def push(self, ref: str | None = None) -> int:
        """Upload artifacts (of ``ref``, or of all versions) to the hub's DVC remote."""
        return self.registry.push(ref)

    def pull(self, ref: str | None = None) -> int:
        """Download artifacts (of ``ref``, or of all versions) from the hub's DVC remote."""
        return self.registry.pull(ref)

    def doctor(self, repair: bool = False) -> DoctorReport:
        """Check the hub for what a crash can leave behind; with ``repair``, mend it."""
        return run_doctor(self.registry, repair=repair)

    # -- deployments -------------------------------------------------------------------------------
    def deploy(
        self,
        ref: str,
        name: str | None = None,
        *,
        replicas: int = 1,
        port: int | None = None,
        host: str = "127.0.0.1",
        follow_stage: bool = False,
        target: str = "local",
        server: dict[str, Any] | None = None,
        timeout: float | None = None,
        target_options: dict[str, Any] | None = None,
    ) -> DeploymentStatus:
        """Serve ``ref`` (``fraud@v0.0.2``, ``fraud#prod``…) as deployment ``name``.

        Blocks until every replica is ready. The replicas outlive this process; the endpoint
        is ``http://HOST:PORT`` (a free port is picked and recorded unless ``port`` is given).

        Args:
            ref: the version to serve.
            name: the deployment's name (default: the model's name).
            replicas: how many server processes share the endpoint.
            follow_stage: with a stage reference, roll to each new holder of the stage.
            target: the deployment backend (``local``, or one from an entry point).
            server: model server options (``max_batch_size``, ``max_wait_ms``,
                ``sample_rate``, ``max_body_mb``, ``runtime``).
            target_options: where and how the target runs it, for targets that take some
                (``kubernetes``: ``namespace``, ``context``, ``image``, ``hpa_max``… see
                ``KubernetesOptions``); committed with the deployment's spec, so names only,
                never a credential.

        Raises:
            InvalidArgument: a bad option, or ``name`` is already deployed and running.
            NotFound: ``ref`` does not exist.
            BackendError: the deployment did not become ready (the server's own reason).
        """
        return self._deployments.deploy(
            ref,
            name,
            replicas=replicas,
            port=port,
            host=host,
            follow_stage=follow_stage,
            target=target,
            server=server,
            timeout=timeout,
            options=target_options,
        )

    def update(
        self,
        name: str,
        version: str | None = None,
        *,
        replicas: int | None = None,
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """Roll deployment ``name`` to ``version`` (``v0.0.3``, ``fraud@v0.0.3``,
        ``fraud#prod``) without downtime; blocks until done.

        Raises:
            BackendError: the new version did not become ready; the old one keeps serving.
        """
        return self._deployments.update(name, version, replicas=replicas, timeout=timeout)

    def rollback(
        self, name: str, to: int | None = None, *, timeout: float | None = None
    ) -> DeploymentStatus:
        """Go back to revision ``to`` of deployment ``name`` (default: the previous one)."""
        return self._deployments.rollback(name, to, timeout=timeout)

    def stop(self, name: str) -> bool:
        """Stop deployment ``name``; ``False`` if nothing was deployed under that name."""
        return self._deployments.stop(name)

    def deployment(self, name: str) -> DeploymentStatus:
        """The status of deployment ``name``: desired state, replicas, health, last error."""
        return self._deployments.status(name)

    def deployments(self) -> list[DeploymentStatus]:
        """The status of every deployment of this hub."""
        return self._deployments.all()

    @staticmethod
    def targets() -> list[str]:
        """The deployment targets usable here: built-in ones whose client library is
        installed, then third-party ones (entry points)."""
        from .deploy.backend import available_targets

        return available_targets()

    def revisions(self, name: str) -> list[Revision]:
        """The revisions of deployment ``name``, oldest first (its rollback log)."""
        return self._deployments.revisions(name)

    def deployment_logs(self, name: str, tail: int = 100) -> list[str]:
        """The last ``tail`` lines of deployment ``name``'s log."""
        return self._deployments.logs(name, tail)

    def manifests(self, name: str, **options: Any) -> str:
        """The Kubernetes YAML (Deployment, Service, optional HorizontalPodAutoscaler) of
        deployment ``name``, or of a model reference (``fraud@v0.0.2``), for GitOps tools.

        Args:
            options: ``KubernetesOptions`` fields (``namespace``, ``image``, ``hpa_min``,
                ``hpa_max``, ``source``, ``secret``, ``hub_url``…) over the deployment's own,
                and ``replicas``.

        Raises:
            NotFound: no such deployment or model version.
            InvalidArgument: a bad option, or pods could not get the model (no reachable DVC
                remote, no git URL, or a credential in it).
        """
        from .deploy.kubernetes import render_manifests

        return render_manifests(self.registry, name, options)

    # -- images ------------------------------------------------------------------------------------
    def build(
        self,
        ref: str,
        tag: str | None = None,
        *,
        base_image: str | None = None,
        progress: Callable[[str], None] | None = None,
        push: bool = False,
    ) -> BuiltImage:
        """Build a Docker image serving ``ref`` (what ``deploy --target docker`` runs).

        The weights are the image's last layer: a new version of the same model rebuilds
        only that layer. ``progress`` receives the engine's build output line by line.

        Args:
            tag: the image tag (default ``modelhub/NAME:VERSION``).
            base_image: the image to build on (default ``modelhub-base:bookworm``, made by
                ``build_base_image``; or ``$MODELHUB_DOCKER_BASE_IMAGE``).
            push: push it to the registry the tag names (``registry.example.org/fraud:v1``),
                with the engine's credentials (``docker login``); ``pushed`` says where.

        Raises:
            InvalidArgument: the docker SDK or the base image is missing, or ``push`` with a
                tag that names no registry.
            BackendError: the engine is unreachable or the build or the push failed.
        """
        from .deploy.docker.backend import DockerBackend

        backend = self._deployments.backend("docker")
        assert isinstance(backend, DockerBackend)
        return backend.build(ref, tag=tag, base_image=base_image, progress=progress, push=push)

    @staticmethod
    def build_base_image(
        tag: str | None = None, *, progress: Callable[[str], None] | None = None
    ) -> str:
        """Create the base image of model images from Debian's packages (debootstrap, root)
        and wheels downloaded on this host; returns its id."""
        from .deploy.docker.backend import docker_client
        from .deploy.docker.baseimage import DEFAULT_BASE_IMAGE, build_base_image

        return build_base_image(
            docker_client(), tag or DEFAULT_BASE_IMAGE, say=progress or (lambda line: None)
        )

    # -- experiments -------------------------------------------------------------------------------
    @property
    def _experiments(self) -> Experiments:
        # imported on first use: its statistics bring scipy.stats, which a model server
        # (it opens a Hub to load its model) never needs
        if self._experiments_service is None:
            from .deploy.experiments import Experiments

            self._experiments_service = Experiments(self._deployments)
        return self._experiments_service

    def ab_start(
        self,
        name: str,
        challenger: str,
        *,
        kind: str = "split",
        split: str | None = None,
        key: str | None = None,
        steps: str | tuple[float, ...] | None = None,
        dwell_seconds: float = 300.0,
        guardrails: Guardrails | dict[str, Any] | None = None,
        variant: str = "challenger",
        timeout: float | None = None,
    ) -> DeploymentStatus:
        """Start an experiment on deployment ``name``: ``challenger`` (``v0.0.3`` or a
        reference) next to the version it serves.

        Args:
            kind: ``split`` (A/B; ``split="90/10"``, champion first; default 50/50), ``canary`` (``steps``
                such as ``"5,25,50,100"``, one per ``dwell_seconds`` while the guardrails
                hold), ``bluegreen`` (switch all traffic once the challenger is ready) or
                ``shadow`` (the challenger sees copies; callers get the champion's answers).
            key: a request field (e.g. ``user_id``) for sticky assignment; the
                ``X-Modelhub-Key`` header always works.
            guardrails: ``max_error_rate``, ``max_p95_seconds``, ``min_requests``: a breach
                ends the experiment and sends all traffic back to the champion.

        Raises:
            InvalidArgument: a bad option, or an experiment already running.
            BackendError: the challenger could not be served; the champion keeps serving.
        """
        return self._experiments.start(
            name,
            challenger,
            kind=kind,
            split=split,
            key=key,
            steps=steps,
            dwell_seconds=dwell_seconds,
            guardrails=guardrails,
            variant=variant,
            timeout=timeout,
        )

    def ab_stop(
        self, name: str, reason: str = "stopped by the user", *, kind: str | None = None
    ) -> DeploymentStatus:
        """End the experiment on ``name``: all traffic back to the champion. With ``kind``
        (``canary``…), only an experiment of that kind."""
        return self._experiments.stop(name, reason, kind=kind)

    def ab_promote(
        self,
        name: str,
        variant: str | None = None,
        *,
        stage: str | None = None,
        kind: str | None = None,
    ) -> DeploymentStatus:
        """Make the challenger the deployment's only version and give it the stage the
        deployment follows (or ``stage``), in one step. With ``kind``, only an experiment of
        that kind."""
        return self._experiments.promote(name, variant, stage=stage, kind=kind)

    def ab_advance(self, name: str) -> DeploymentStatus:
        """Move a canary to its next step now."""
        return self._experiments.advance(name)

    def ab_policy(self, name: str) -> TrafficPolicy:
        """The experiment (running or ended) on deployment ``name``."""
        return self._experiments.policy(name)

    def ab_report(
        self,
        name: str,
        *,
        metric: str = "auto",
        alpha: float = 0.05,
        min_samples: int = 100,
        higher_is_better: bool = True,
    ) -> ExperimentAnalysis:
        """Which variant is better, by how much, and how sure we are: the fixed-horizon
        report and an always-valid (peeking-safe) answer, from the outcomes posted back to
        the deployment's ``/feedback``."""
        return self._experiments.analysis(
            name,
            metric=metric,
            alpha=alpha,
            min_samples=min_samples,
            higher_is_better=higher_is_better,
        )

    def shadow_report(self, name: str, top_k: int = 10) -> ShadowReport:
        """Agreement between champion and challenger on the same requests."""
        return self._experiments.shadow_report(name, top_k)

    @staticmethod
    def ab_plan(
        baseline: float,
        mde: float,
        *,
        relative: bool = False,
        alpha: float = 0.05,
        power: float = 0.8,
        requests_per_day: float | None = None,
    ) -> SampleSizePlan:
        """Requests per variant (and days, given the traffic) to detect ``mde`` on a
        baseline conversion rate."""
        from .experiments.sizing import sample_size_for_rate

        return sample_size_for_rate(
            baseline,
            mde,
            relative=relative,
            alpha=alpha,
            power=power,
            requests_per_day=requests_per_day,
        )

    def sync_deployments(self) -> list[DeploymentStatus]:
        """Roll stage-following deployments to their stage's holder and restart deployments
        whose processes are gone; returns those it changed."""
        return self._deployments.sync()

    # -- monitoring --------------------------------------------------------------------------------
    @property
    def _drift(self) -> DriftMonitor:
        # imported on first use, like the experiments: scipy and pyarrow stay out of a model
        # server (it opens a Hub to load its model)
        if self._drift_service is None:
            from .monitoring.service import DriftMonitor

            self._drift_service = DriftMonitor(self.registry)
        return self._drift_service

    def _cache_drift_profile(self, version: ModelVersion) -> None:
        """Build the drift profile of a version registered with reference data, now, so that
        drift windows are cheap later; a failure only costs that head start."""
        try:
            self._drift.profile(version.ref)
        except Exception as exc:  # the registration is done: never undo it for a cache
            log.warning("No drift profile cached for %s (built on first use): %s", version.ref, exc)

    @staticmethod
    def _drift_options(options: DriftOptions | dict[str, Any] | None) -> DriftOptions | None:
        from .monitoring.drift import DriftOptions

        if options is None or isinstance(options, DriftOptions):
            return options
        try:
            return DriftOptions(**options)
        except TypeError as exc:
            raise InvalidArgument(
                f"Invalid drift option: {exc}.",
                hint="The options are the fields of DriftOptions: test, threshold, correction, "
                "drift_share, columns...",
            ) from None

    def drift(
        self,
        name: str,
        *,
        window: Any = None,
        since: Any = None,
        until: Any = None,
        over_time: Any = None,
        step: Any = None,
        options: DriftOptions | dict[str, Any] | None = None,
        all_versions: bool = False,
    ) -> DeploymentDrift:
        """Drift of what deployment ``name`` was asked (and answered) against the reference
        data of the version it serves.

        Args:
            window: the last ``"1h"`` (or a timedelta); ``since``/``until``: a range (datetimes
                or ISO texts); by default every logged request.
            over_time: also drift on sliding windows of this length (``"15m"``), every ``step``.
            options: ``DriftOptions`` (or a dict of its fields): ``test``, ``correction``...
            all_versions: use requests every version answered, not only the served one.

        Raises:
            NotFound: no such deployment, or its version has no reference data.
            InvalidArgument: nothing logged in the window, a bad window or option.
        """
        status = self.deployment(name)
        version = status.serving_version or status.desired_version
        self._deployments.collect_logs(name)
        return self._drift.deployment(
            name,
            f"{status.model}@{version}",
            window=window,
            since=since,
            until=until,
            over_time=over_time,
            step=step,
            options=self._drift_options(options),
            all_versions=all_versions,
        )

    def drift_summary(self, name: str, window: Any = None) -> DriftSummary:
        """Only the dataset-level drift verdict of deployment ``name`` over the last ``window``
        (``"1h"``; default everything logged): ``drift``, ``ok``, or ``no_data`` with the reason
        (nothing logged yet, or the version has no reference data) instead of an error.

        Raises:
            NotFound: no such deployment.
            InvalidArgument: a bad window.
        """
        from .monitoring.service import DriftSummary
        from .monitoring.windows import parse_duration

        status = self.deployment(name)
        if isinstance(window, str):
            parse_duration(window)  # a bad window is the caller's mistake, not "no data"
        try:
            return DriftSummary.of(self.drift(name, window=window))
        except (NotFound, InvalidArgument) as missing:
            version = status.serving_version or status.desired_version
            return DriftSummary(name, f"{status.model}@{version}", "no_data", str(missing))

    def drift_data(
        self, ref: str, data: Any, options: DriftOptions | dict[str, Any] | None = None
    ) -> DriftReport:
        """Drift of ``data`` (a DataFrame, pyarrow Table or dict of arrays) against the
        reference data of version ``ref``; columns are matched by name."""
        return self._drift.compare(ref, data, self._drift_options(options))

    def drift_profile(self, ref: str) -> ReferenceProfile:
        """The binned reference profile of version ``ref`` (cached; built at registration)."""
        return self._drift.profile(ref)

    def drift_html(self, name: str, **kwargs: Any) -> str:
        """``drift(name, **kwargs)`` as one self-contained HTML page to share."""
        from .monitoring.html import drift_report_html

        drift = self.drift(name, **kwargs)
        first = "-" if drift.first is None else f"{drift.first:%Y-%m-%d %H:%M:%S}"
        last = "-" if drift.last is None else f"{drift.last:%Y-%m-%d %H:%M:%S}"
        return drift_report_html(
            drift.report,
            title=f"Drift of deployment {name}",
            timeline=drift.timeline,
            subtitle=f"{drift.ref} against its reference data; {drift.n_rows:,} requests "
            f"logged {drift.window.describe()} (from {first} to {last} UTC)",
        )

    def quality(
        self, name: str, *, step: Any = "1h", since: datetime | None = None
    ) -> QualityTimeline:
        """The model's quality over time: the mean of the outcomes posted back to deployment
        ``name`` (``POST /feedback``) per ``step`` window and variant, with 95% intervals.

        Raises:
            NotFound: no such deployment.
            InvalidArgument: a bad step, or no outcome posted yet.
        """
        import numpy as np

        from .deploy.runtime import RuntimeFolder
        from .experiments.quality import quality_over_time
        from .monitoring.windows import parse_duration
        from .serving.outcomes import FEEDBACK_FOLDER

        self.deployment(name)
        if isinstance(step, (int, float)):
            seconds = float(step)
        elif hasattr(step, "total_seconds"):
            seconds = step.total_seconds()
        else:
            seconds = float(parse_duration(step) / np.timedelta64(1, "s"))
        self._deployments.collect_logs(name)
        folder = RuntimeFolder(self.path, name).predictions
        return quality_over_time(
            folder, folder / FEEDBACK_FOLDER, step_seconds=seconds, since=since
        )

    def scrape_metrics(self, name: str) -> Scrape:
        """One reading of ``/metrics`` of every replica of deployment ``name``, added up.

        Raises:
            NotFound: no such deployment.
            BackendError: no replica answered.
        """
        from .monitoring.scrape import fetch_metrics, merge_scrapes

        status = self.deployment(name)
        ports = [r.admin_port for r in status.replicas if r.admin_port]
        scrapes, problems = [], []
        for port in ports:
            try:
                scrapes.append(fetch_metrics(f"http://127.0.0.1:{port}/metrics", time=time.time()))
            except BackendError as exc:
                problems.append(str(exc))
        if not scrapes:
            raise BackendError(
                f"No replica of deployment {name!r} answered on its metrics port"
                + (f" ({problems[0]})" if problems else " (none runs)")
                + ".",
                hint=f"See `modelhub status {name}` and `modelhub logs {name}`.",
            )
        return merge_scrapes(scrapes)

    def monitor(
        self, name: str, *, interval: float = 1.0, previous: Scrape | None = None
    ) -> list[HealthPoint]:
        """The health of deployment ``name`` per variant now: requests/s, error rate, p50/p99
        latency and batch size between two readings of its replicas' ``/metrics``
        (``previous``, else one taken ``interval`` seconds before)."""
        from .monitoring.scrape import health_between

        if previous is None:
            previous = self.scrape_metrics(name)
            time.sleep(interval)
        return health_between(previous, self.scrape_metrics(name))

    @staticmethod
    def alert_rules(
        deployments: list[str] | None = None, thresholds: AlertThresholds | None = None
    ) -> str:
        """Prometheus alerting rules (YAML) on error rate, p99 latency and drift share."""
        from .monitoring.alerts import alert_rules

        return alert_rules(deployments or None, thresholds)

    @staticmethod
    def grafana_dashboard(deployments: list[str] | None = None) -> dict[str, Any]:
        """A Grafana dashboard (JSON model) of the deployments' health and drift share."""
        from .monitoring.alerts import grafana_dashboard

        return grafana_dashboard(deployments or None)

    def alert_loop(
        self,
        deployments: list[str],
        notifiers: list[Notifier],
        *,
        thresholds: AlertThresholds | None = None,
        interval: float = 60.0,
        drift_window: Any = "1h",
        drift_metrics: DriftMetrics | None = None,
    ) -> AlertLoop:
        """Built-in alerts for ``deployments`` (without Prometheus): every ``interval``
        seconds, scrape their replicas, check error rate, p99 latency and drift share over the
        last ``drift_window`` (``None``: no drift alerts), and notify each change once.
        Each round's drift reports also update ``drift_metrics`` (the
        ``modelhub_feature_drift_score`` / ``modelhub_dataset_drift_share`` gauges) when given.
        Call ``tick()`` for one round, ``start()``/``stop()`` for a background thread."""
        from .monitoring.notify import AlertEvaluator, AlertLoop, default_rules
        from .monitoring.scrape import merge_scrapes

        for name in deployments:
            self.deployment(name)  # NotFound now rather than a warning every round

        def scrape() -> Scrape:
            readings = []
            for name in deployments:
                try:
                    readings.append(self.scrape_metrics(name))
                except BackendError as exc:
                    log.warning("%s", exc)
            if not readings:
                raise BackendError("No deployment answered on its metrics port.")
            return merge_scrapes(readings)

        def drift() -> dict[str, DriftReport]:
            reports = {}
            for name in deployments:
                try:
                    reports[name] = self.drift(name, window=drift_window).report
                except ModelHubError as exc:
                    log.info("No drift for %s this round: %s", name, exc)
                    continue
                if drift_metrics is not None:
                    drift_metrics.update(name, reports[name])
            return reports

        evaluator = AlertEvaluator(default_rules(thresholds, deployments), notifiers)
        return AlertLoop(
            evaluator,
            scrape,
            drift=drift if drift_window is not None else None,
            interval=interval,
        )
