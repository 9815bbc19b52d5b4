"""The verbs shared by the ``modelhub`` command line and the ``%modelhub`` magic.

One parser definition and one dispatch table serve both adapters, so a verb means the same
thing in a terminal and in a cell. Each handler parses nothing itself: it makes one ``Hub``
call and returns a view (``Table`` or ``Message``) for the adapter to print or display.
"""

from __future__ import annotations

import argparse
import difflib
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from .errors import InvalidArgument
from .hub import HUB_ENV, Hub
from .views import (
    Lines,
    Message,
    Table,
    deployment_status,
    deployment_summary,
    deployments_table,
    history_table,
    models_table,
    revisions_table,
    version_detail,
    versions_table,
)


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


def command(name: str, help: str) -> Callable[[Handler], Handler]:
    def decorate(fn: Handler) -> Handler:
        HANDLERS[name] = fn
        DESCRIPTIONS[name] = help
        return fn

    return decorate


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
@command("deploy", "serve a model version on this machine (supervised replicas)")
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


@command("sync-deployments", "roll stage-following deployments and restart stopped ones")
def _sync(args: argparse.Namespace, ctx: Context) -> Table:
    changed = _hub(args).sync_deployments()
    table = deployments_table(changed)
    table.empty = "Every deployment already matches its desired state."
    return table


# -- the parser -------------------------------------------------------------------------------
class HelpfulParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose "invalid choice" error names the closest verb."""

    def error(self, message: str) -> Any:
        if message.startswith("argument COMMAND: invalid choice:"):
            word = message.split("invalid choice:", 1)[1].split("'")[1]
            close = suggest_command(word)
            message = f"unknown command {word!r}." + (
                f" Did you mean {close!r}?" if close else " See --help for the commands."
            )
        return super().error(message)


def build_parser(
    parser_class: type[argparse.ArgumentParser] = HelpfulParser,
    prog: str = "modelhub",
    model_help: str = "path of a .joblib/.pkl/.onnx file or of a folder",
    serve: bool = False,
) -> argparse.ArgumentParser:
    """The parser of every verb; adapters pass their own ``parser_class`` (e.g. one that
    raises instead of exiting). ``serve`` adds the command line's foreground ``serve`` verb,
    which a notebook has no use for."""
    parser = parser_class(
        prog=prog,
        description="Register, version, stage and deploy models in a git + DVC hub.",
        epilog=f"The hub is --hub PATH, else ${HUB_ENV}, else ~/modelhub. "
        f"Run `{prog} COMMAND --help` for a command's options.",
    )
    parser.add_argument("--hub", help=f"hub folder (default: ${HUB_ENV} or ~/modelhub)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=parser_class)

    def verb(name: str, **kwargs: Any) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=DESCRIPTIONS[name],
            description=DESCRIPTIONS[name].capitalize() + ".",
            **kwargs,
        )
        p.add_argument("--json", action="store_true", help="print JSON for scripts")
        return p

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
    p.add_argument("--target", default="local", help="deployment backend (default: local)")
    p.add_argument(
        "--option",
        action="append",
        metavar="KEY=VALUE",
        help="a model server option, e.g. max_batch_size=64 (repeatable)",
    )
    for name in ("status", "revisions", "stop"):
        verb(name).add_argument("name", help="the deployment's name")
    verb("ls-deployments")
    verb("deployments")
    p = verb("logs")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--tail", type=int, default=100, help="how many lines (default: 100)")
    p = verb("update")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--version", help="v1.2.0, NAME@v1.2.0 or NAME#STAGE")
    p.add_argument("--replicas", type=int, help="a new number of replicas")
    p = verb("rollback")
    p.add_argument("name", help="the deployment's name")
    p.add_argument("--to", type=int, metavar="REVISION", help="revision (default: the previous)")
    verb("sync-deployments")
    if serve:
        p = sub.add_parser(
            "serve",
            help="serve one model version in the foreground (the model server)",
            description="Serve one model version in the foreground until Ctrl-C.",
        )
        p.add_argument("ref", help="NAME@VERSION, NAME#STAGE or NAME")
        p.add_argument("--port", type=int, default=8080, help="port (default: 8080)")
        p.add_argument("--host", default="127.0.0.1", help="address (default: 127.0.0.1)")
    return parser


def suggest_command(word: str) -> str | None:
    """The closest known verb to a mistyped one."""
    close = difflib.get_close_matches(word, list(HANDLERS), n=1, cutoff=0.5)
    return close[0] if close else None


def run(args: argparse.Namespace, ctx: Context) -> Table | Message | Lines:
    """Execute a parsed command line."""
    return HANDLERS[args.command](args, ctx)


def read_table(value: str) -> Any:
    """Read a CSV or Parquet file into a DataFrame (for --sample and --reference)."""
    import pandas as pd

    path = Path(value).expanduser()
    if not path.is_file():
        raise InvalidArgument(f"No data file at {path}.", hint="Give a .csv or .parquet file.")
    if path.suffix.lower() == ".parquet":
        return pd.read_parquet(path)
    if path.suffix.lower() in (".csv", ".txt"):
        return pd.read_csv(path)
    raise InvalidArgument(f"Cannot read {path.name}: use a .csv or .parquet file.")
