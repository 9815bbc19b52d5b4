"""``Hub``: the one API behind every surface (magics, widgets, REST, CLI, sidebar).

A hub is a git repository with DVC initialised. ``Hub()`` opens the default hub:
``$MODELHUB_HUB`` if set, else ``~/modelhub``. Adapters parse their input, make one ``Hub`` call
and render the result; rules live here and below, never in an adapter.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .deploy import Deployments, DeploymentStatus, Revision
from .errors import AlreadyExists, HubNotFound
from .experiments.policy import Guardrails, TrafficPolicy
from .models import HistoryEvent, ModelSummary, ModelVersion
from .registry.doctor import DoctorReport, run_doctor
from .registry.dvcstore import DvcStore, atomic_write
from .registry.gitrepo import GitRepo
from .registry.refs import Bump
from .registry.registry import RUNTIME_DIR, ModelRegistry, ProgressCallback

if TYPE_CHECKING:  # imported on first use (see Hub._experiments)
    from .deploy.experiments import Experiments
    from .experiments.analysis import ExperimentAnalysis
    from .experiments.shadow import ShadowReport
    from .experiments.sizing import SampleSizePlan

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
        return self.registry.register(
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

    def revisions(self, name: str) -> list[Revision]:
        """The revisions of deployment ``name``, oldest first (its rollback log)."""
        return self._deployments.revisions(name)

    def deployment_logs(self, name: str, tail: int = 100) -> list[str]:
        """The last ``tail`` lines of deployment ``name``'s log."""
        return self._deployments.logs(name, tail)

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
