"""The verbs shared by the ``modelhub`` command line and the ``%modelhub`` magic.

One parser definition and one dispatch table serve both adapters, so a verb means the same
thing in a terminal and in a cell. Each handler parses nothing itself: it makes one ``Hub``
call and returns a view (``Table`` or ``Message``) for the adapter to print or display.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import InvalidArgument
from .hub import HUB_ENV, Hub
from .views import (
    Lines,
    Message,
    Table,
    ab_report_table,
    deployment_drift_table,
    deployment_status,
    deployment_summary,
    deployments_table,
    drift_report_table,
    experiment_message,
    experiment_status,
    history_table,
    models_table,
    monitor_table,
    quality_table,
    revisions_table,
    sample_size_message,
    shadow_report_table,
    version_detail,
    versions_table,
)

if TYPE_CHECKING:
    from .experiments.quality import QualityTimeline
    from .monitoring.alerts import AlertThresholds
    from .monitoring.notify import Notifier
    from .monitoring.service import DeploymentDrift


@dataclass
class Context:
    """What a handler needs from its adapter.

    ``resolve_model`` turns the ``MODEL`` argument
    of ``register`` into what to register (a path in a terminal, a variable in a notebook);
    ``resolve_data(value, raw)`` does the same for data arguments, reading a table from a file
    unless ``raw`` (then a path stays a path, to be hashed as it is).
    """

    resolve_model: Callable[[str], Any]
    resolve_data: Callable[[str, bool], Any]
    notebook: str | None = None


Handler = Callable[[argparse.Namespace, Context], "Table | Message | Lines"]
HANDLERS: dict[str, Handler] = {}
DESCRIPTIONS: dict[str, str] = {}


#: the actions of verbs that have some (``ab start``): verb -> action -> what it does
ACTIONS: dict[str, dict[str, str]] = {}


def command(name: str, help: str) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        DESCRIPTIONS[name] = help
        return fn

    return decorate


def action(verb: str, name: str, help: str) -> Callable[[Handler], Handler]:
    """Register the handler of ``VERB NAME`` (e.g. ``ab start``); ``verb`` must be in
    ``DESCRIPTIONS`` (see ``verb_group``)."""

    def decorate(fn: Handler) -> Handler:
        HANDLERS[f"{verb} {name}"] = fn
        ACTIONS.setdefault(verb, {})[name] = help
        return fn

    return decorate


def verb_group(name: str, help: str) -> None:
    """Declare a verb whose work is done by its actions (``ab start``, ``ab stop``...)."""
    DESCRIPTIONS[name] = help


def add_parser_with_example(
    where: argparse._SubParsersAction[Any], name: str, help: str, example: str
) -> argparse.ArgumentParser:
    """A (sub)command parser whose ``--help`` says what it does and ends with ``example``;
    every such command takes ``--json``."""
    p = where.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog=f"Example: {example}",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    return p


def _key_values(items: list[str] | None, what: str) -> dict[str, Any]:
    """Parse ``key=value`` pairs; values that read as JSON (numbers, true) become such."""
    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"Invalid {what} {item!r}.", hint=f"Write --{what} key=value.")
        try:
            out[key] = json.loads(value)
        except ValueError:
            out[key] = value
    return out


def _when(text: str | None) -> datetime | None:
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise InvalidArgument(
            f"Invalid time {text!r}.", hint="Write it as ISO-8601, e.g. 2026-11-01T10:00:00+00:00."
        ) from exc
    return value if value.tzinfo else value.replace(tzinfo=timezone.utc)


def _hub(args: argparse.Namespace) -> Hub:
    """The hub chosen with --hub, else the default one."""
    return Hub(args.hub)


# -- the verbs --------------------------------------------------------------------------------
@command("init", "create a hub (git + DVC), optionally with a DVC remote")
def _init(args: argparse.Namespace, ctx: Context) -> Message:
    hub = Hub.init(args.path or args.hub, remote=args.remote, exist_ok=args.exist_ok)
    remotes = hub.registry.dvc.remotes()
    details = [f"DVC remote: {', '.join(remotes.values())}"] if remotes else []
    return Message(f"Hub ready at {hub.path}", {"path": str(hub.path), "remotes": remotes}, details)


#: files at least this large get a progress bar while they are hashed and stored
PROGRESS_MIN_BYTES = 32 * 1024 * 1024


def _bytes_on_disk(model: Any) -> int:
    """The size of a model given as a path (a file, or a folder's files); 0 for an object."""
    if not isinstance(model, (str, Path)):
        return 0
    path = Path(model)
    if path.is_file():
        return path.stat().st_size
    if path.is_dir():
        return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())
    return 0


@contextmanager
def _storing_bar(total: int, name: str) -> Iterator[Callable[[int], None] | None]:
    """A progress bar (text in a terminal, a widget in a notebook) for large files."""
    if total < PROGRESS_MIN_BYTES:
        yield None
        return
    from tqdm.auto import tqdm

    with tqdm(
        total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=f"storing {name}"
    ) as bar:
        yield bar.update


@command("register", "register a model as a new version")
def _register(args: argparse.Namespace, ctx: Context) -> Message:
    hub = _hub(args)
    model = ctx.resolve_model(args.model)
    sample = ctx.resolve_data(args.sample, False) if args.sample else None
    reference = ctx.resolve_data(args.reference, False) if args.reference else None
    with _storing_bar(_bytes_on_disk(model), args.name) as progress:
        version = hub.register(
            model,
            args.name,
            version=args.version,
            bump=args.bump,
            sample=sample,
            reference=reference,
            data=ctx.resolve_data(args.data, True) if args.data else None,
            metrics=_key_values(args.metric, "metric"),
            params=_key_values(args.param, "param"),
            description=args.description or "",
            labels=args.label or [],
            onnx=args.onnx,
            notebook=ctx.notebook,
            progress=progress,
        )
    meta = version.meta
    details = [f"flavor {meta.flavor}, {meta.artifact.size:,} bytes, md5 {meta.artifact.md5}"]
    if meta.signature:
        details.append(
            f"signature: {len(meta.signature.inputs)} inputs ({meta.signature.input_kind})"
        )
    if meta.reference:
        details.append(f"reference data: {meta.reference.rows:,} rows kept for drift detection")
    return Message(f"Registered {version.ref}", version, details)


@command("ls", "list models with their latest version and stages")
def _ls(args: argparse.Namespace, ctx: Context) -> Table:
    return models_table(_hub(args).ls())


@command("show", "show one version: metadata, signature, lineage")
def _show(args: argparse.Namespace, ctx: Context) -> Table:
    return version_detail(_hub(args).show(args.ref, at=_when(args.at)))


@command("versions", "list every version of a model")
def _versions(args: argparse.Namespace, ctx: Context) -> Table:
    return versions_table(args.name, _hub(args).versions(args.name))


@command("history", "registrations and stage changes of a model, with who and when")
def _history(args: argparse.Namespace, ctx: Context) -> Table:
    return history_table(args.name, _hub(args).history(args.name))


@command("promote", "put a version into a stage (e.g. prod)")
def _promote(args: argparse.Namespace, ctx: Context) -> Message:
    hub = _hub(args)
    event = hub.promote(args.ref, args.stage, args.message, roll=args.roll)
    details = []
    if args.roll:
        following = [
            s
            for s in hub.deployments()
            if s.follow_stage and s.ref == f"{event.name}#{event.stage}"
        ]
        details = [f"deployment {s.name} serves {s.model}@{s.serving_version}" for s in following]
    return Message(f"{event.name}@{event.version} is now in stage {event.stage!r}", event, details)


@command("demote", "take a stage away from a version")
def _demote(args: argparse.Namespace, ctx: Context) -> Message:
    event = _hub(args).demote(args.ref, args.stage, args.message)
    return Message(f"{event.name}@{event.version} left stage {event.stage!r}", event)


@command("deprecate", "mark a whole model deprecated")
def _deprecate(args: argparse.Namespace, ctx: Context) -> Message:
    event = _hub(args).deprecate(args.name, args.message)
    return Message(f"{event.name} is deprecated", event)


@command("deregister", "withdraw one version (its history is kept)")
def _deregister(args: argparse.Namespace, ctx: Context) -> Message:
    event = _hub(args).deregister(args.ref, args.message)
    return Message(f"{event.name}@{event.version} is deregistered", event)


@command("push", "upload artifacts to the hub's DVC remote")
def _push(args: argparse.Namespace, ctx: Context) -> Message:
    count = _hub(args).push(args.ref)
    return Message(f"Pushed {count} file(s)", {"transferred": count})


@command("pull", "download artifacts from the hub's DVC remote")
def _pull(args: argparse.Namespace, ctx: Context) -> Message:
    count = _hub(args).pull(args.ref)
    return Message(f"Pulled {count} file(s)", {"transferred": count})


@command("doctor", "check the hub for leftovers of a crash (and --repair them)")
def _doctor(args: argparse.Namespace, ctx: Context) -> Table:
    report = _hub(args).doctor(repair=args.repair)
    verdict = (
        f"Hub is healthy ({report.checked_versions} versions checked)."
        if not report.findings
        else (
            "Repaired." if report.ok else "Problems found; run with --repair to mend what can be."
        )
    )
    return Table(
        ["problem", "where", "detail", "repaired"],
        [[f.kind, f.subject, f.detail, f.repaired] for f in report.findings],
        title=verdict,
        payload=report,
        empty="",
    )


# -- deployments ------------------------------------------------------------------------------
@command("deploy", "serve a model version (targets: local, docker, kubernetes)")
def _deploy(args: argparse.Namespace, ctx: Context) -> Message:
    status = _hub(args).deploy(
        args.ref,
        args.name,
        replicas=args.replicas,
        port=args.port,
        host=args.host,
        follow_stage=args.follow,
        target=args.target,
        server=_key_values(args.option, "option"),
        target_options=_kubernetes_options(args) or None,
    )
    return Message(
        f"Deployed {status.model}@{status.serving_version} as {status.name} at {status.endpoint}",
        status,
        deployment_summary(status)[1:],
    )


@command("status", "show a deployment: replicas, health, versions, last error")
def _status(args: argparse.Namespace, ctx: Context) -> Table:
    return deployment_status(_hub(args).deployment(args.name))


@command("ls-deployments", "list deployments with their versions and health")
def _deployments(args: argparse.Namespace, ctx: Context) -> Table:
    return deployments_table(_hub(args).deployments())


command("deployments", "the same as ls-deployments")(_deployments)


@command("logs", "show the last lines of a deployment's log")
def _logs(args: argparse.Namespace, ctx: Context) -> Lines:
    return Lines(_hub(args).deployment_logs(args.name, args.tail), empty="(the log is empty)")


#: the Kubernetes options of ``deploy --target kubernetes`` and ``manifests``: flag -> field
KUBERNETES_FLAGS = {
    "namespace": "namespace to deploy in (default: default)",
    "context": "kubeconfig context (default: the current one)",
    "image": "image with jupyter-modelhub (and git + dvc for --source dvc)",
    "source": "how pods get the model: dvc (fetched at start, default) or image (baked in)",
    "secret": "Secret whose keys the model fetcher gets (DVC remote credentials)",
    "hub_url": "git URL pods clone the hub from (default: its origin remote)",
    "hpa_min": "autoscaler: fewest replicas",
    "hpa_max": "autoscaler: most replicas (turns the HorizontalPodAutoscaler on)",
    "hpa_cpu": "autoscaler: target CPU use, % of the request (default: 80)",
}


def _kubernetes_options(args: argparse.Namespace) -> dict[str, Any]:
    return _given(args, **{name: f"k8s_{name}" for name in KUBERNETES_FLAGS})


def _add_kubernetes_options(p: argparse.ArgumentParser) -> None:
    for name, text in KUBERNETES_FLAGS.items():
        kind = int if name.startswith("hpa_") else str
        flag = "--" + name.replace("_", "-")
        # argparse formats help with %: a literal one is %%
        help = "kubernetes: " + text.replace("%", "%%")
        p.add_argument(flag, dest=f"k8s_{name}", type=kind, help=help)


@command("manifests", "print the Kubernetes YAML of a deployment or a version (for GitOps)")
def _manifests(args: argparse.Namespace, ctx: Context) -> Lines:
    options = _kubernetes_options(args)
    options.pop("context", None)  # printing reaches no cluster
    if args.replicas is not None:
        options["replicas"] = args.replicas
    return Lines(_hub(args).manifests(args.name, **options).splitlines())


@command("update", "roll a deployment to another version without downtime")
def _update(args: argparse.Namespace, ctx: Context) -> Message:
    status = _hub(args).update(args.name, args.version, replicas=args.replicas)
    return Message(
        f"Deployment {status.name} serves {status.model}@{status.serving_version}",
        status,
        deployment_summary(status)[1:],
    )


@command("rollback", "go back to an earlier revision of a deployment (default: the previous)")
def _rollback(args: argparse.Namespace, ctx: Context) -> Message:
    status = _hub(args).rollback(args.name, args.to)
    return Message(
        f"Deployment {status.name} rolled back to {status.model}@{status.serving_version} "
        f"(now revision {status.revision})",
        status,
        deployment_summary(status)[1:],
    )


@command("revisions", "list the revisions of a deployment (its rollback log)")
def _revisions(args: argparse.Namespace, ctx: Context) -> Table:
    return revisions_table(args.name, _hub(args).revisions(args.name))


@command("stop", "stop a deployment and remove it (stopping twice is fine)")
def _stop(args: argparse.Namespace, ctx: Context) -> Message:
    stopped = _hub(args).stop(args.name)
    text = f"Stopped deployment {args.name}" if stopped else f"No deployment {args.name} runs"
    return Message(text, {"name": args.name, "stopped": stopped})


@command("build", "build a Docker image serving a model version (weights in the last layer)")
def _build(args: argparse.Namespace, ctx: Context) -> Message:
    image = _hub(args).build(
        args.ref,
        args.tag,
        base_image=args.base_image,
        progress=_build_output(args.quiet),
        push=args.push,
    )
    pushed = [f"pushed: {image.pushed} (--image for the kubernetes target)"] if image.pushed else []
    return Message(
        f"Built {image.tag} ({image.model} {', '.join(image.versions)})",
        image,
        [
            f"image {image.image_id[7:19]}, {image.size_mb:.0f} MB, {image.layers} layers, "
            f"{image.cached_steps}/{image.steps} steps from cache, {image.seconds:.1f} s",
            f"on {image.base_image}; packages: {', '.join(image.requirements) or 'none'}",
            *pushed,
            f"run it: modelhub deploy {image.model}@{image.versions[0]} --target docker",
        ],
    )


@command("build-base", "create the base image of model images from Debian packages (root)")
def _build_base(args: argparse.Namespace, ctx: Context) -> Message:
    image_id = Hub.build_base_image(args.tag, progress=_build_output(args.quiet))
    return Message(f"Built the base image {args.tag} ({image_id[7:19]})", {"id": image_id})


def _build_output(quiet: bool) -> Callable[[str], None] | None:
    """The engine's build output, line by line, on stderr (shown in a notebook too)."""
    if quiet:
        return None
    import sys

    return lambda line: print(line, file=sys.stderr, flush=True)


@command("sync-deployments", "roll stage-following deployments and restart stopped ones")
def _sync(args: argparse.Namespace, ctx: Context) -> Table:
    changed = _hub(args).sync_deployments()
    table = deployments_table(changed)
    table.empty = "Every deployment already matches its desired state."
    return table


# -- experiments: A/B tests, canaries, blue-green switches, shadows ---------------------------
EXPERIMENT_VERBS = {
    "ab": ("split", "A/B test a challenger version against the deployment's champion"),
    "canary": ("canary", "ramp a challenger up step by step while its guardrails hold"),
    "bluegreen": ("bluegreen", "switch all traffic to a challenger once it is ready"),
    "shadow": ("shadow", "mirror traffic to a challenger; callers get the champion's answers"),
}
for _verb, (_kind, _help) in EXPERIMENT_VERBS.items():
    verb_group(_verb, _help)

_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s|min|m|h|d)?\s*$")


def parse_duration(text: str) -> float:
    """Seconds from ``30s``, ``5m``, ``1h``, ``500ms`` or a plain number of seconds.

    Raises:
        argparse.ArgumentTypeError: not a positive duration (argparse reports it as a
            usage error naming the option).
    """
    match = _DURATION.match(str(text))
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"] if match else 0.0
    if seconds <= 0:
        raise argparse.ArgumentTypeError(
            f"invalid duration {text!r}: write a positive number with a unit, e.g. 30s, 5m or 1h"
        )
    return seconds


def parse_share(text: str) -> float:
    """A share from ``0.05`` or ``5%``."""
    raw = str(text).strip()
    try:
        value = float(raw.rstrip("%")) / (100.0 if raw.endswith("%") else 1.0)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(
            f"invalid share {text!r}: write a number between 0 and 1, or a percentage such as 5%"
        )
    return value


def _given(args: argparse.Namespace, **names: str) -> dict[str, Any]:
    """``{keyword: value}`` of the options (``keyword=attribute``) the user gave."""
    values = {key: getattr(args, attr, None) for key, attr in names.items()}
    return {key: value for key, value in values.items() if value is not None}


def _start(kind: str) -> Handler:
    def start(args: argparse.Namespace, ctx: Context) -> Message:
        options = _given(
            args, split="split", key="key", steps="steps", dwell_seconds="dwell", variant="variant"
        )
        guardrails = _given(
            args,
            max_error_rate="max_error_rate",
            max_p95_seconds="max_p95",
            min_requests="min_requests",
        )
        status = _hub(args).ab_start(
            args.name, args.challenger, kind=kind, guardrails=guardrails or None, **options
        )
        return experiment_message("Started", status)

    return start


def _experiment_status(args: argparse.Namespace, ctx: Context) -> Table:
    return experiment_status(_hub(args).deployment(args.name))


def _experiment_stop(kind: str | None) -> Handler:
    def stop(args: argparse.Namespace, ctx: Context) -> Message:
        status = _hub(args).ab_stop(args.name, **_given(args, reason="reason"), kind=kind)
        return experiment_message("Stopped", status)

    return stop


def _experiment_promote(kind: str | None) -> Handler:
    def promote(args: argparse.Namespace, ctx: Context) -> Message:
        status = _hub(args).ab_promote(
            args.name, getattr(args, "variant", None), stage=args.stage, kind=kind
        )
        return experiment_message("Promoted", status)

    return promote


for _verb, (_kind, _help) in EXPERIMENT_VERBS.items():
    what = {"ab": "the A/B test", "canary": "the canary", "bluegreen": "the blue-green switch",
            "shadow": "the shadow"}[_verb]  # fmt: skip
    action(_verb, "start", f"start {what} on a deployment")(_start(_kind))
    action(_verb, "status", f"show {what}: each variant's version, share and state")(
        _experiment_status
    )
    _only = None if _verb == "ab" else _kind  # `ab` ends any experiment; `canary` a canary
    action(_verb, "stop", f"end {what}: all traffic back to the champion")(_experiment_stop(_only))
    action(_verb, "promote", "make the challenger the champion (and give it the stage)")(
        _experiment_promote(_only)
    )


@action("ab", "report", "which variant is better, by how much, and how sure we are")
def _ab_report(args: argparse.Namespace, ctx: Context) -> Table:
    analysis = _hub(args).ab_report(
        args.name,
        **_given(
            args,
            metric="metric",
            alpha="alpha",
            min_samples="min_samples",
            higher_is_better="higher_is_better",
        ),
    )
    return ab_report_table(analysis)


@action("ab", "plan", "requests per variant needed to detect an effect (before launch)")
def _ab_plan(args: argparse.Namespace, ctx: Context) -> Message:
    plan = Hub.ab_plan(  # no hub needed
        args.baseline,
        args.mde,
        relative=args.relative,
        **_given(args, alpha="alpha", power="power", requests_per_day="per_day"),
    )
    return sample_size_message(plan)


@action("canary", "advance", "move the canary to its next step now")
def _canary_advance(args: argparse.Namespace, ctx: Context) -> Message:
    return experiment_message("Advanced", _hub(args).ab_advance(args.name))


@action("shadow", "report", "how often the challenger agrees with the champion, and where not")
def _shadow_report(args: argparse.Namespace, ctx: Context) -> Table:
    return shadow_report_table(_hub(args).shadow_report(args.name, **_given(args, top_k="top")))


#: one example per verb or action, shown by ``--help`` (and listed in the README)
EXAMPLES = {
    "init": "init ~/team-hub --remote s3://bucket/models --exist-ok",
    "register": "register model --name fraud --sample X_test --reference X_train --metric auc=0.93",
    "ls": "ls",
    "show": "show fraud#prod --at 2026-11-01T10:00:00+00:00",
    "versions": "versions fraud",
    "history": "history fraud",
    "promote": "promote fraud@v0.0.2 --stage prod --roll",
    "demote": "demote fraud#prod --stage prod -m 'worse on October data'",
    "deprecate": "deprecate fraud-old -m 'replaced by fraud'",
    "deregister": "deregister fraud@v0.0.1 -m 'trained on leaked labels'",
    "push": "push fraud@v0.0.2",
    "pull": "pull fraud#prod",
    "doctor": "doctor --repair",
    "deploy": "deploy fraud#prod --name fraud-svc --replicas 2 --port 8500 --follow",
    "status": "status fraud-svc",
    "revisions": "revisions fraud-svc",
    "stop": "stop fraud-svc",
    "ls-deployments": "ls-deployments",
    "deployments": "deployments",
    "logs": "logs fraud-svc --tail 50",
    "manifests": "manifests fraud-svc --namespace models --hpa-max 5",
    "update": "update fraud-svc --version v0.0.3",
    "rollback": "rollback fraud-svc --to 2",
    "sync-deployments": "sync-deployments",
    "build": "build fraud@v0.0.2 --tag registry.example.org/fraud:v0.0.2 --push",
    "build-base": "build-base --tag modelhub-base:bookworm",
    "ab start": "ab start fraud-svc --challenger v0.0.2 --split 90/10 --key user_id",
    "ab status": "ab status fraud-svc",
    "ab report": "ab report fraud-svc --metric rate --alpha 0.05",
    "ab stop": "ab stop fraud-svc --reason 'wrong features'",
    "ab promote": "ab promote fraud-svc --stage prod",
    "ab plan": "ab plan --baseline 0.10 --mde 0.01 --per-day 20000",
    "canary start": "canary start fraud-svc --challenger v0.0.2 --steps 5,25,50,100 --dwell 5m",
    "canary advance": "canary advance fraud-svc",
    "shadow start": "shadow start fraud-svc --challenger v0.0.2",
    "shadow report": "shadow report fraud-svc --top 5",
    "bluegreen start": "bluegreen start fraud-svc --challenger v0.0.2",
    "drift": "drift fraud-svc --window 1h --over-time 1h --step 15m",
    "drift-data": "drift-data fraud@v0.0.2 this_week.parquet --test psi",
    "monitor": "monitor fraud-svc --interval 5s",
    "quality": "quality fraud-svc --step 1h --since 2026-11-01",
    "alerts export": "alerts export --out monitoring/ --deployment fraud-svc --p99 300ms",
    "alerts run": "alerts run fraud-svc --webhook https://hooks.example.org/T0 --interval 1m",
    "serve": "serve fraud#prod --port 8080",
}


def example(command: str) -> str:
    """The example line of a verb or action (``ab stop``): its own, else the action on the
    sample deployment."""
    return EXAMPLES.get(command, f"{command} fraud-svc")


def _add_experiment_verbs(
    sub: argparse._SubParsersAction[Any],
    parser_class: type[argparse.ArgumentParser],
    prog: str,
    notebook: bool,
) -> None:
    """The parsers of ``ab``, ``canary``, ``bluegreen`` and ``shadow`` and their actions."""
    for verb in EXPERIMENT_VERBS:
        first = next(key for key in EXAMPLES if key.startswith(f"{verb} "))
        group = sub.add_parser(
            verb,
            help=DESCRIPTIONS[verb],
            description=DESCRIPTIONS[verb][0].upper() + DESCRIPTIONS[verb][1:] + ".",
            epilog=f"Example: {prog} {EXAMPLES[first]}\n"
            f"Run `{prog} {verb} ACTION --help` for an action's options.",
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        actions = group.add_subparsers(
            dest="action", metavar="ACTION", parser_class=parser_class, required=True
        )
        for name, help in ACTIONS[verb].items():
            p = add_parser_with_example(actions, name, help, f"{prog} {example(f'{verb} {name}')}")
            if name != "plan":
                p.add_argument("name", metavar="NAME", help="the deployment's name")
            _add_action_options(p, verb, name, notebook)


def _add_guardrail_options(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--max-error-rate",
        type=parse_share,
        metavar="SHARE",
        help="end the experiment if the challenger's error rate exceeds this (e.g. 0.05 or 5%%)",
    )
    p.add_argument(
        "--max-p95",
        type=parse_duration,
        metavar="DURATION",
        help="end it if the challenger's p95 latency exceeds this (e.g. 0.5s or 500ms)",
    )
    p.add_argument(
        "--min-requests",
        type=int,
        metavar="N",
        help="judge the guardrails only on at least N requests",
    )


def _add_action_options(p: argparse.ArgumentParser, verb: str, name: str, notebook: bool) -> None:
    if name == "start":
        p.add_argument(
            "--challenger",
            required=True,
            metavar="REF",
            help="the version to try: v0.0.2, NAME@v0.0.2 or NAME#STAGE",
        )
        if verb == "ab":
            p.add_argument("--split", help="shares, champion first, e.g. 90/10 (default: 50/50)")
            p.add_argument("--variant", help="the challenger's variant name (default: challenger)")
        if verb in ("ab", "canary"):
            p.add_argument(
                "--key",
                help="request field for sticky assignment, e.g. user_id "
                "(the X-Modelhub-Key header always works)",
            )
        if verb == "canary":
            p.add_argument(
                "--steps", help="the challenger's shares in percent (default: 5,25,50,100)"
            )
            p.add_argument(
                "--dwell",
                type=parse_duration,
                metavar="DURATION",
                help="time per step while guardrails hold, e.g. 30s, 5m, 1h (default: 5m)",
            )
        if verb in ("ab", "canary"):
            _add_guardrail_options(p)
    elif name == "stop":
        p.add_argument("--reason", help="why (kept in the deployment's history)")
    elif name == "promote":
        if verb == "ab":
            p.add_argument("--variant", help="the winner (default: the only challenger)")
        p.add_argument(
            "--stage", help="give the winner this stage (default: the stage followed, if any)"
        )
    elif (verb, name) == ("ab", "report"):
        p.add_argument(
            "--metric",
            choices=["auto", "rate", "mean"],
            help="rate for 0/1 outcomes, mean for numbers (default: auto)",
        )
        p.add_argument("--alpha", type=float, help="significance level (default: 0.05)")
        p.add_argument(
            "--min-samples",
            type=int,
            metavar="N",
            help="outcomes per variant before a verdict (default: 100)",
        )
        p.add_argument(
            "--lower-is-better",
            dest="higher_is_better",
            action="store_const",
            const=False,
            help="a smaller outcome is better (errors, latency, cost)",
        )
        if notebook:
            p.add_argument(
                "--refresh",
                type=parse_duration,
                metavar="DURATION",
                help="re-read the report every DURATION (e.g. 30s) until the widget is closed",
            )
    elif (verb, name) == ("ab", "plan"):
        p.add_argument(
            "--baseline", type=float, required=True, help="the champion's rate, e.g. 0.10"
        )
        p.add_argument(
            "--mde",
            type=float,
            required=True,
            help="the smallest difference worth detecting, e.g. 0.01 (1 percentage point)",
        )
        p.add_argument(
            "--relative", action="store_true", help="--mde is relative (0.1 = 10%% lift)"
        )
        p.add_argument("--alpha", type=float, help="significance level (default: 0.05)")
        p.add_argument("--power", type=float, help="chance to detect the effect (default: 0.8)")
        p.add_argument(
            "--per-day", type=float, metavar="N", help="requests per day, for a duration"
        )
    elif (verb, name) == ("shadow", "report"):
        p.add_argument(
            "--top", type=int, metavar="K", help="how many disagreeing rows to show (default: 10)"
        )


# -- monitoring: drift, health, alerts ----------------------------------------------------------
def _timedelta(seconds: float | None) -> timedelta | None:
    return None if seconds is None else timedelta(seconds=seconds)


def _drift_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of ``Hub.drift`` from ``drift``'s options."""
    options = _given(args, test="test", correction="correction")
    return {
        "window": _timedelta(args.window),
        "since": _when(args.since),
        "until": _when(args.until),
        "over_time": _timedelta(args.over_time),
        "step": _timedelta(args.step),
        "options": options or None,
        "all_versions": args.all_versions,
    }


def drift_window(args: argparse.Namespace) -> timedelta | None:
    """The ``--window`` of a ``drift`` line (None: everything logged)."""
    return _timedelta(args.window)


def drift_loader(args: argparse.Namespace) -> Callable[[timedelta | None], DeploymentDrift]:
    """What the drift dashboard calls to (re)read: ``load(window)`` with the other options of
    the line. Without ``--over-time`` it asks for drift over about 12 windows of the chosen
    span (for ``all``, of the logged span, read first)."""
    hub, kwargs = _hub(args), _drift_kwargs(args)

    def load(window: timedelta | None) -> DeploymentDrift:
        options = {**kwargs, "window": window, "since": None if window else kwargs["since"]}
        if options["over_time"] is None and window is not None:
            options["over_time"] = window / 12
        drift = hub.drift(args.name, **options)
        first, last = drift.first, drift.last
        if options["over_time"] is None and first and last and last > first:
            options["over_time"] = max((last - first) / 12, timedelta(seconds=1))
            drift = hub.drift(args.name, **options)
        return drift

    return load


#: the quality windows of the drift dashboard: this many per chosen span (for ``all``, 1 h each)
QUALITY_WINDOWS = 12


def quality_loader(args: argparse.Namespace) -> Callable[[timedelta | None], QualityTimeline]:
    """What the drift dashboard calls to draw the quality over time: ``load(window)``, the
    outcomes of the last ``window`` in ``QUALITY_WINDOWS`` steps (everything, by the hour, for
    ``None``)."""
    hub = _hub(args)

    def load(window: timedelta | None) -> QualityTimeline:
        if window is None:
            return hub.quality(args.name, step=3600.0)
        since = datetime.now(timezone.utc) - window
        return hub.quality(args.name, step=window / QUALITY_WINDOWS, since=since)

    return load


@command("drift", "drift of a deployment's requests against its version's reference data")
def _drift(args: argparse.Namespace, ctx: Context) -> Table | Message:
    hub = _hub(args)
    if args.html:
        page = hub.drift_html(args.name, **_drift_kwargs(args))
        path = Path(args.html).expanduser()
        path.write_text(page, encoding="utf-8")
        size = len(page.encode())
        return Message(
            f"Wrote the drift report of {args.name} to {path} ({size / 1024:,.0f} kB)",
            {"path": str(path), "bytes": size},
        )
    return deployment_drift_table(hub.drift(args.name, **_drift_kwargs(args)))


@command("drift-data", "drift of a table (file or variable) against a version's reference data")
def _drift_data(args: argparse.Namespace, ctx: Context) -> Table:
    data = ctx.resolve_data(args.data, False)
    options = _given(args, test="test", correction="correction")
    report = _hub(args).drift_data(args.ref, data, options or None)
    return drift_report_table(report, f"Drift of {args.data} against the reference of {args.ref}")


@command("monitor", "live health of a deployment per variant: requests/s, latency, errors")
def _monitor(args: argparse.Namespace, ctx: Context) -> Table:
    hub = _hub(args)
    points = hub.monitor(args.name, interval=args.interval)
    return monitor_table(args.name, points, hub.deployment(args.name))


@command("quality", "the model's quality over time, from the outcomes posted back")
def _quality(args: argparse.Namespace, ctx: Context) -> Table:
    since = _when(args.since)
    return quality_table(args.name, _hub(args).quality(args.name, step=args.step, since=since))


verb_group("alerts", "alerting rules for Prometheus and Grafana, or built-in alerts")


def _thresholds(args: argparse.Namespace) -> AlertThresholds:
    from .monitoring.alerts import AlertThresholds

    return AlertThresholds(
        **_given(
            args,
            error_rate="error_rate",
            p99_latency_seconds="p99",
            drift_share="drift_share",
            for_="for_",
        )
    )


RULES_FILE = "modelhub-alerts.yml"
DASHBOARD_FILE = "modelhub-grafana.json"


@action("alerts", "export", f"write Prometheus rules ({RULES_FILE}) and a Grafana dashboard")
def _alerts_export(args: argparse.Namespace, ctx: Context) -> Message:
    deployments = args.deployment or None
    rules = Hub.alert_rules(deployments, _thresholds(args))  # no hub needed
    dashboard = Hub.grafana_dashboard(deployments)
    folder = Path(args.out).expanduser()
    if folder.exists() and not folder.is_dir():
        raise InvalidArgument(f"{folder} is a file.", hint="Give --out a folder.")
    folder.mkdir(parents=True, exist_ok=True)
    written = {"rules": folder / RULES_FILE, "dashboard": folder / DASHBOARD_FILE}
    written["rules"].write_text(rules, encoding="utf-8")
    written["dashboard"].write_text(json.dumps(dashboard, indent=2) + "\n", encoding="utf-8")
    scope = ", ".join(deployments) if deployments else "every deployment"
    return Message(
        f"Wrote alerting rules and a Grafana dashboard for {scope}",
        {key: str(path) for key, path in written.items()},
        [
            f"{written['rules']}: add it to rule_files in prometheus.yml "
            "(check it with `promtool check rules`)",
            f"{written['dashboard']}: import it in Grafana (Dashboards > New > Import)",
        ],
    )


def _notifiers(args: argparse.Namespace) -> list[Notifier]:
    from .monitoring.notify import EmailNotifier, SmtpSettings, WebhookNotifier

    notifiers: list[Notifier] = [WebhookNotifier(url) for url in args.webhook or []]
    if args.email_to or args.smtp_host:
        if not (args.email_to and args.smtp_host):
            raise InvalidArgument(
                "E-mail alerts need both --email-to and --smtp-host.",
                hint="Also --smtp-from, and --smtp-user with --smtp-password-env if the server "
                "asks for a login.",
            )
        config = {
            "host": args.smtp_host,
            "port": args.smtp_port,
            "sender": args.smtp_from,
            "recipients": args.email_to,
            "username": args.smtp_user,
            "password_env": args.smtp_password_env,
            "security": args.smtp_security,
        }
        notifiers.append(
            EmailNotifier(SmtpSettings.from_mapping({k: v for k, v in config.items() if v}))
        )
    if not notifiers:
        raise InvalidArgument(
            "Say where alerts go: --webhook URL and/or --email-to ADDRESS --smtp-host HOST.",
        )
    return notifiers


@action("alerts", "run", "check error rate, latency and drift periodically; notify changes")
def _alerts_run(args: argparse.Namespace, ctx: Context) -> Message:
    if getattr(args, "in_notebook", False):
        raise InvalidArgument(
            "`alerts run` runs until Ctrl-C, which would block this kernel.",
            hint=f"Run it in a terminal: modelhub alerts run {' '.join(args.names)} --webhook URL",
        )
    hub = _hub(args)
    gauges = None
    if args.metrics_port is not None:
        from prometheus_client import start_http_server

        from .monitoring.metrics import DriftMetrics

        gauges = DriftMetrics()
        try:
            start_http_server(args.metrics_port, addr="127.0.0.1", registry=gauges.registry)
        except OSError as exc:
            raise InvalidArgument(
                f"Cannot serve the drift gauges on 127.0.0.1:{args.metrics_port}: {exc}.",
                hint="Choose a free --metrics-port.",
            ) from exc
    loop = hub.alert_loop(
        args.names,
        _notifiers(args),
        thresholds=_thresholds(args),
        interval=args.interval,
        drift_window=None if args.no_drift else _timedelta(args.drift_window),
        drift_metrics=gauges,
    )
    rules = ", ".join(f"{r.signal} {r.op} {r.threshold:g}" for r in loop.evaluator.rules)
    print(
        f"Checking {', '.join(args.names)} every {args.interval:g} s ({rules}); Ctrl-C to stop.",
        flush=True,
    )
    if args.metrics_port is not None:
        print(
            f"Drift gauges for Prometheus at http://127.0.0.1:{args.metrics_port}/metrics",
            flush=True,
        )
    sent = 0
    try:
        while args.checks is None or loop.ticks < args.checks:
            if loop.ticks:
                time.sleep(args.interval)
            for notice in loop.tick():
                sent += 1
                print(notice.summary, flush=True)
    except KeyboardInterrupt:
        pass
    firing = [f"{rule} {labels}" for rule, labels in loop.evaluator.firing]
    return Message(
        f"Stopped after {loop.ticks} check(s); {sent} notice(s) sent",
        {"checks": loop.ticks, "notices": sent, "firing": loop.evaluator.firing},
        [f"still firing: {', '.join(firing)}"] if firing else [],
    )


def _add_drift_options(p: argparse.ArgumentParser) -> None:
    # no ``choices``: the drift engine checks the names (and lists them) when asked, so that
    # building the parser does not load it
    p.add_argument("--test", metavar="TEST", help="one test for every feature: ks, "
                   "wasserstein, psi, jensenshannon or chisquare (default: by type and size)")  # fmt: skip
    p.add_argument("--correction", metavar="METHOD", help="multiple-testing correction: bh "
                   "(Benjamini-Hochberg, default), bonferroni or none")  # fmt: skip


def _add_threshold_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--error-rate", type=parse_share, metavar="SHARE",
                   help="alert above this share of 5xx answers (default: 0.05)")  # fmt: skip
    p.add_argument("--p99", type=parse_duration, metavar="DURATION",
                   help="alert above this p99 latency, e.g. 500ms (default: 0.5s)")  # fmt: skip
    p.add_argument("--drift-share", type=parse_share, metavar="SHARE",
                   help="alert from this share of drifted features (default: 0.5)")  # fmt: skip


def _add_monitoring_verbs(
    sub: argparse._SubParsersAction[Any],
    parser_class: type[argparse.ArgumentParser],
    prog: str,
    notebook: bool,
) -> None:
    """The parsers of ``drift``, ``drift-data``, ``monitor`` and ``alerts export|run``."""

    def parser(
        where: argparse._SubParsersAction[Any], name: str, help: str, example: str
    ) -> argparse.ArgumentParser:
        return add_parser_with_example(where, name, help, f"{prog} {example}")

    ex = EXAMPLES
    p = parser(sub, "drift", DESCRIPTIONS["drift"], ex["drift"])
    p.add_argument("name", metavar="NAME", help="the deployment's name")
    p.add_argument("--window", type=parse_duration, metavar="DURATION",
                   help="the last DURATION of requests, e.g. 1h (default: all)")  # fmt: skip
    p.add_argument("--since", metavar="TIME", help="requests from this ISO-8601 time on")
    p.add_argument("--until", metavar="TIME", help="requests before this ISO-8601 time")
    p.add_argument("--over-time", type=parse_duration, metavar="DURATION",
                   help="also drift on sliding windows of this length, e.g. 1h")  # fmt: skip
    p.add_argument("--step", type=parse_duration, metavar="DURATION",
                   help="distance between those windows (default: --over-time)")  # fmt: skip
    _add_drift_options(p)
    p.add_argument("--all-versions", action="store_true",
                   help="use requests any version answered, not only the served one")  # fmt: skip
    p.add_argument("--html", metavar="FILE", help="write a shareable HTML report to FILE")

    p = parser(sub, "drift-data", DESCRIPTIONS["drift-data"], ex["drift-data"])
    p.add_argument("ref", metavar="REF", help="NAME, NAME@v1.2.0 or NAME#STAGE")
    p.add_argument("data", metavar="DATA", help="a .csv/.parquet file"
                   + (" or a DataFrame variable" if notebook else ""))  # fmt: skip
    _add_drift_options(p)

    p = parser(sub, "monitor", DESCRIPTIONS["monitor"], ex["monitor"])
    p.add_argument("name", metavar="NAME", help="the deployment's name")
    if notebook:
        p.add_argument("--interval", type=parse_duration, default=5.0, metavar="DURATION",
                       help="read the metrics every DURATION while the widget is open "
                       "(default: 5s)")  # fmt: skip
        p.add_argument("--history", type=int, default=360, metavar="N",
                       help="keep the last N readings (default: 360)")  # fmt: skip
    else:
        p.add_argument("--interval", type=parse_duration, default=1.0, metavar="DURATION",
                       help="measure over this long (default: 1s)")  # fmt: skip

    p = parser(sub, "quality", DESCRIPTIONS["quality"], ex["quality"])
    p.add_argument("name", metavar="NAME", help="the deployment's name")
    p.add_argument("--step", type=parse_duration, default=3600.0, metavar="DURATION",
                   help="one row per window of this length (default: 1h)")  # fmt: skip
    p.add_argument("--since", metavar="TIME", help="only outcomes since TIME (ISO-8601)")

    group = sub.add_parser(
        "alerts",
        help=DESCRIPTIONS["alerts"],
        description=DESCRIPTIONS["alerts"].capitalize() + ".",
        epilog=f"Example: {prog} {ex['alerts export']}\n"
        f"Run `{prog} alerts ACTION --help` for an action's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = group.add_subparsers(
        dest="action", metavar="ACTION", parser_class=parser_class, required=True
    )
    p = parser(actions, "export", ACTIONS["alerts"]["export"], ex["alerts export"])
    p.add_argument("--out", default=".", metavar="DIR", help="where to write (default: here)")
    p.add_argument("--deployment", action="append", metavar="NAME",
                   help="only this deployment (repeatable; default: every deployment)")  # fmt: skip
    _add_threshold_options(p)
    p.add_argument("--for", dest="for_", metavar="DURATION",
                   help="how long a breach lasts before it fires, e.g. 5m (default: 5m)")  # fmt: skip

    p = parser(actions, "run", ACTIONS["alerts"]["run"], ex["alerts run"])
    p.set_defaults(in_notebook=notebook)
    p.add_argument("names", nargs="+", metavar="NAME", help="the deployments to watch")
    p.add_argument("--webhook", action="append", metavar="URL",
                   help="POST alerts (Alertmanager's JSON) to URL (repeatable)")  # fmt: skip
    p.add_argument("--email-to", action="append", metavar="ADDRESS",
                   help="e-mail alerts to ADDRESS (repeatable; needs --smtp-host)")  # fmt: skip
    p.add_argument("--smtp-host", metavar="HOST", help="the SMTP server")
    p.add_argument("--smtp-port", type=int, default=587, metavar="PORT",
                   help="its port (default: 587)")  # fmt: skip
    p.add_argument("--smtp-security", choices=["starttls", "ssl", "none"], default="starttls",
                   help="how to secure the connection (default: starttls)")  # fmt: skip
    p.add_argument("--smtp-from", default="modelhub@localhost", metavar="ADDRESS",
                   help="the sender (default: modelhub@localhost)")  # fmt: skip
    p.add_argument("--smtp-user", metavar="USER", help="log in as USER")
    p.add_argument("--smtp-password-env", metavar="VAR",
                   help="the environment variable holding the SMTP password "
                   "(never pass a password on the command line)")  # fmt: skip
    _add_threshold_options(p)
    p.add_argument("--interval", type=parse_duration, default=60.0, metavar="DURATION",
                   help="time between checks (default: 60s)")  # fmt: skip
    p.add_argument("--drift-window", type=parse_duration, default=3600.0, metavar="DURATION",
                   help="drift of the requests of the last DURATION (default: 1h)")  # fmt: skip
    p.add_argument("--no-drift", action="store_true", help="no drift alert")
    p.add_argument("--checks", type=int, metavar="N", help="stop after N checks (cron jobs)")
    p.add_argument("--metrics-port", type=int, metavar="PORT",
                   help="also serve the drift gauges (modelhub_feature_drift_score, "
                   "modelhub_dataset_drift_share) for Prometheus on 127.0.0.1:PORT/metrics")  # fmt: skip


# -- the parser -------------------------------------------------------------------------------
_INVALID_CHOICE = re.compile(r"^argument (COMMAND|ACTION): invalid choice: '([^']*)'")
_MISSING_ACTION = "the following arguments are required: ACTION"


class HelpfulParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose "invalid choice" error names the closest verb (or action,
    for verbs such as ``ab``), and whose missing action error lists the actions.

    It keeps its sub-parsers (``verbs``) to know those names.
    """

    verbs: argparse._SubParsersAction[Any] | None = None

    def add_subparsers(self, **kwargs: Any) -> argparse._SubParsersAction[Any]:
        self.verbs = super().add_subparsers(**kwargs)
        return self.verbs

    def error(self, message: str) -> Any:
        return super().error(self.explain(message))

    def explain(self, message: str) -> str:
        """``message`` with the closest verb or action suggested."""
        choices = list(self.verbs.choices) if self.verbs is not None else []
        match = _INVALID_CHOICE.match(message)
        if match:
            noun, word = match.group(1).lower(), match.group(2)
            close = closest(word, choices)
            hint = (
                f" Did you mean {close!r}?"
                if close
                else (" See --help for the commands." if noun == "command" else "")
            )
            if not close and noun == "action":
                hint = f" Choose one of {', '.join(choices)}."
            return f"unknown {noun} {word!r}.{hint}"
        if message == _MISSING_ACTION:
            return f"say which action: {', '.join(choices)} (see --help)."
        return message


def build_parser(
    parser_class: type[argparse.ArgumentParser] = HelpfulParser,
    prog: str = "modelhub",
    model_help: str = "path of a .joblib/.pkl/.onnx file or of a folder",
    serve: bool = False,
    notebook: bool = False,
) -> argparse.ArgumentParser:
    """The parser of every verb; adapters pass their own ``parser_class`` (e.g. one that
    raises instead of exiting). ``serve`` adds the command line's foreground ``serve`` verb,
    which a notebook has no use for; ``notebook`` the options only a notebook has a use for
    (``ab report --refresh``)."""
    parser = parser_class(
        prog=prog,
        description="Register, version, stage and deploy models in a git + DVC hub.",
        epilog=f"The hub is --hub PATH, else ${HUB_ENV}, else ~/modelhub. "
        f"Run `{prog} COMMAND --help` for a command's options.",
    )
    parser.add_argument("--hub", help=f"hub folder (default: ${HUB_ENV} or ~/modelhub)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)

    def verb(name: str) -> argparse.ArgumentParser:
        return add_parser_with_example(sub, name, DESCRIPTIONS[name], f"{prog} {EXAMPLES[name]}")

    p = verb("init")
    p.add_argument("path", nargs="?", help="where to create the hub (default: the default hub)")
    p.add_argument("--remote", help="DVC remote URL or local folder for artifacts")
    p.add_argument("--exist-ok", action="store_true", help="succeed if the hub already exists")

    p = verb("register")
    p.add_argument("model", metavar="MODEL", help=model_help)
    p.add_argument("--name", required=True, help="model name: lowercase letters, digits, '-', '_'")
    p.add_argument("--version", help="explicit version vX.Y.Z (default: bump the latest)")
    p.add_argument(
        "--bump",
        choices=["major", "minor", "patch"],
        default="patch",
        help="which part to bump (default: patch)",
    )
    p.add_argument("--sample", help="sample input (signature inference)")
    p.add_argument("--reference", help="training features; a sample is kept for drift detection")
    p.add_argument("--data", help="training data whose hash is recorded as lineage")
    p.add_argument("--metric", action="append", metavar="KEY=VALUE", help="a metric (repeatable)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE", help="a parameter (repeatable)")
    p.add_argument("--description", "-d", help="what this version is")
    p.add_argument("--label", action="append", help="a label (repeatable)")
    p.add_argument("--onnx", action="store_true", help="also convert a scikit-learn model to ONNX")

    verb("ls")
    p = verb("show")
    p.add_argument("ref", help="NAME, NAME@v1.2.0, NAME@latest or NAME#STAGE")
    p.add_argument("--at", help="resolve a stage as it was at this ISO-8601 time")
    verb("versions").add_argument("name")
    verb("history").add_argument("name")
    for name in ("promote", "demote"):
        p = verb(name)
        p.add_argument("ref", help="NAME@VERSION (or NAME#STAGE)")
        p.add_argument("--stage", required=True, help="stage name, e.g. prod or staging")
        p.add_argument("--message", "-m", help="why (kept in the tag)")
        if name == "promote":
            p.add_argument(
                "--roll",
                action="store_true",
                help="roll the deployments that follow this stage to the new version now",
            )
    p = verb("deprecate")
    p.add_argument("name")
    p.add_argument("--message", "-m")
    p = verb("deregister")
    p.add_argument("ref", help="NAME@VERSION")
    p.add_argument("--message", "-m")
    for name in ("push", "pull"):
        verb(name).add_argument("ref", nargs="?", help="one version (default: all)")
    verb("doctor").add_argument("--repair", action="store_true", help="mend what can be mended")

    p = verb("deploy")
    p.add_argument("ref", help="NAME@VERSION, NAME#STAGE or NAME (its latest version)")
    p.add_argument("--name", help="the deployment's name (default: the model's name)")
    p.add_argument("--replicas", type=int, default=1, help="server processes (default: 1)")
    p.add_argument("--port", type=int, help="port to serve on (default: a free one)")
    p.add_argument("--host", default="127.0.0.1", help="address to serve on (default: 127.0.0.1)")
    p.add_argument("--follow", action="store_true", help="follow the stage: roll on each promotion")
    p.add_argument(
        "--target", default="local", help="deployment backend: local (default), docker, kubernetes"
    )
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="a model server option, e.g. max_batch_size=64 (repeatable)",
    )
    _add_kubernetes_options(p)
    for name in ("status", "revisions", "stop"):
        verb(name).add_argument("name", help="the deployment's name")
    verb("ls-deployments")
    verb("deployments")
    p = verb("logs")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--tail", type=int, default=100, help="how many lines (default: 100)")
    p = verb("manifests")
    p.add_argument("name", help="a deployment's name, or a version (NAME@vX.Y.Z, NAME#STAGE)")
    p.add_argument("--replicas", type=int, help="replicas (default: the deployment's, or 1)")
    _add_kubernetes_options(p)
    p = verb("update")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--version", help="v1.2.0, NAME@v1.2.0 or NAME#STAGE")
    p.add_argument("--replicas", type=int, help="a new number of replicas")
    p = verb("rollback")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--to", type=int, metavar="REVISION", help="revision (default: the previous)")
    verb("sync-deployments")
    p = verb("build")
    p.add_argument("ref", help="NAME@VERSION, NAME#STAGE or NAME (its latest version)")
    p.add_argument("--tag", help="the image tag (default: modelhub/NAME:VERSION)")
    p.add_argument(
        "--base-image",
        help="the image to build on (default: $MODELHUB_DOCKER_BASE_IMAGE or "
        "modelhub-base:bookworm, see build-base)",
    )
    p.add_argument("--quiet", action="store_true", help="do not show the build output")
    p.add_argument(
        "--push",
        action="store_true",
        help="push it to the registry its --tag names, with your `docker login` credentials",
    )
    p = verb("build-base")
    p.add_argument("--tag", default="modelhub-base:bookworm", help="the base image's tag")
    p.add_argument("--quiet", action="store_true", help="do not show the build output")
    _add_experiment_verbs(sub, parser_class, prog, notebook)
    _add_monitoring_verbs(sub, parser_class, prog, notebook)
    if serve:
        p = sub.add_parser(
            "serve",
            help="serve one model version in the foreground (the model server)",
            description="Serve one model version in the foreground until Ctrl-C.",
            epilog=f"Example: {prog} {EXAMPLES['serve']}",
        )
        p.add_argument("ref", help="NAME@VERSION, NAME#STAGE or NAME")
        p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
        p.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    return parser


def closest(word: str, choices: list[str]) -> str | None:
    """The closest of ``choices`` to a mistyped ``word`` (the one it begins, if only one)."""
    starting = [choice for choice in choices if word and choice.startswith(word)]
    if len(starting) == 1:
        return starting[0]
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.5)
    return close[0] if close else None


def suggest_command(word: str) -> str | None:
    """The closest known verb to a mistyped one."""
    return closest(word, list(DESCRIPTIONS))


def run(args: argparse.Namespace, ctx: Context) -> Table | Message | Lines:
    """Execute a parsed command line."""
    action = getattr(args, "action", None)
    return HANDLERS[f"{args.command} {action}" if action else args.command](args, ctx)


def read_table(value: str) -> Any:
    """Read a CSV or Parquet file into a DataFrame (for --sample and --reference)."""
    import pandas as pd

    path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidArgument(f"No data file at {path}.", hint="Give a .csv or .parquet file.")
    suffix = path.suffix.lower()
    if suffix not in (".parquet", ".csv", ".txt"):
        raise InvalidArgument(f"Cannot read {path.name}: use a .csv or .parquet file.")
    try:
        return pd.read_parquet(path) if suffix == ".parquet" else pd.read_csv(path)
    except Exception as exc:  # pandas and pyarrow raise many kinds for a malformed file
        raise InvalidArgument(
            f"Cannot read {path.name} as {suffix[1:].upper()}: {exc}",
            hint="Check that the file is a valid table of features.",
        ) from exc
