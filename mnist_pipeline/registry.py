"""Models by reference, for every command that reads digits (`--model`).

A reference is a model file, or one of this repository's models by name: `NAME@VERSION` or
`NAME#STAGE` of the model registry (the `artifacts:` of dvc.yaml, versions and stages as GTO's
git tags), or a git revision or experiment name (its `models/model.tflite`). A named model is
found through DVC's API, fetched from the DVC cache or the remote, and kept in the user cache under
its md5 in dvc.lock: the next start needs no network.
"""

import json
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

from ruamel.yaml import YAML

from mnist_pipeline import paths
from mnist_pipeline.errors import PipelineError, one_line
from mnist_pipeline.files import atomic_file, check_model_file, locked_folder, md5_of_file

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".tflite", ".keras")
MODEL_NAME = "mnist-mlp"  # the pipeline's model in the registry: its artifact in dvc.yaml


@dataclass(frozen=True)
class ModelSource:
    """Which model answers: a file of the workspace, or an output of a git revision."""

    reference: str  # as given: a path, NAME@VERSION, NAME#STAGE, a revision or an experiment
    path: Path  # the file, in the workspace or (with a revision) as committed in that revision
    md5: str
    version: str | None = None  # of the registry, for NAME@VERSION and NAME#STAGE
    revision: str | None = None  # the git commit it was committed in; None for a file

    def label(self) -> str:
        """E.g. `mnist-mlp#prod (v1.0.0, revision 1a2b3c4, md5 26393acb)`."""
        details = [
            *([self.version] if self.version else []),
            *([f"revision {self.revision[:7]}"] if self.revision else []),
            f"md5 {self.md5[:8]}",
        ]
        return f"{self.reference} ({', '.join(details)})"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reference": self.reference,
            "version": self.version,
            "revision": self.revision,
            "md5": self.md5,
        }


def resolve(reference: str, hint: str) -> ModelSource:
    """The model `reference` names; a missing file gets `hint` (what makes one) in its message.

    A file that is there, or a name with a model's suffix, is a file; NAME@VERSION or NAME#STAGE
    with a NAME the registry holds is a registered model; anything else a git revision
    (`origin/main` and `HEAD@{1}` too) or an experiment name.
    """
    file = Path(reference)
    if file.is_file() or file.suffix in MODEL_SUFFIXES:
        check_model_file(file, hint)
        return ModelSource(reference, file, md5_of_file(file))
    check_project(reference)
    name, at, version = reference.partition("@")
    name, hash_sign, stage = name.partition("#")
    if (at or hash_sign) and name in registered_models():
        version, revision, path = registered(name, version, stage)
    else:
        version, revision, path = None, committed_revision(reference), paths.SERVING_MODEL_FILE
    return ModelSource(reference, path, locked_md5(revision, path), version, revision)


def check_project(reference: str) -> None:
    """Raise PipelineError unless the current folder is in a DVC project to look `reference` up
    in."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        Repo.find_root()
    except NotDvcRepoError:
        raise PipelineError(
            f"{reference}: no such model file, and no DVC project here to look it up in "
            f"(looked in {Path.cwd()}): run in the project, or name a model file"
        ) from None


def committed_accuracy(source: ModelSource) -> float | None:
    """The test accuracy committed with the model (reports/metrics.json beside its dvc.lock):
    of its revision, or of the workspace when it is the workspace's model as dvc.lock names it;
    None for any other file, or where there is no such metric."""
    if source.revision is not None:
        import dvc.api
        from dvc.exceptions import PathMissingError

        try:
            metrics = dvc.api.read(str(paths.METRICS_FILE), rev=source.revision)
        except PathMissingError:
            return None
    elif source.path.resolve() == paths.SERVING_MODEL_FILE.resolve() and is_workspace_model(
        source.md5
    ):
        metrics = paths.METRICS_FILE.read_text()
    else:
        return None
    accuracy = json.loads(metrics).get("test", {}).get("accuracy")
    return accuracy if isinstance(accuracy, float) else None


def is_workspace_model(md5: str) -> bool:
    """Whether the pipeline's metrics in the workspace are of the model with this md5: the one
    the workspace's dvc.lock names."""
    if not (paths.METRICS_FILE.is_file() and paths.DVC_LOCK_FILE.is_file()):
        return False
    try:
        return locked_md5(None, paths.SERVING_MODEL_FILE) == md5
    except PipelineError:  # a dvc.lock from before the export
        return False


def local_file(source: ModelSource) -> Path:
    """A file of this machine holding the model: the workspace's, or the revision's output kept
    in the user cache (fetched the first time)."""
    if source.revision is None:
        return source.path
    cached = paths.user_cache_dir() / "models" / f"{source.md5}{source.path.suffix}"
    cached.parent.mkdir(parents=True, exist_ok=True)
    # One download at a time, across processes: a second waits, then finds the model there.
    with locked_folder(cached.parent):
        if cached.is_file():
            log.debug("%s: %s from the user cache", source.reference, cached)
        else:
            download(source, cached)
    return cached


def registered_models() -> list[str]:
    """The names of the models in this repository's registry (GTO's git tags)."""
    import gto.api

    return sorted(gto.api.show("."))


def registered(name: str, version: str, stage: str) -> tuple[str, str, Path]:
    """The version, git revision and file of registered model `name`, by `version` or else by
    `stage`; or one line listing the versions or stages there are."""
    import dvc.api
    import gto.api
    from dvc.exceptions import ArtifactNotFoundError

    if stage:
        in_stage = gto.api.find_versions_in_stage(".", name, stage)
        if not in_stage:
            stages = ", ".join(gto.api.get_stages(".", used=True)) or "none"
            raise PipelineError(f"{name}#{stage}: no version in stage {stage} (stages: {stages})")
        version = in_stage[0].version
    try:
        found = dvc.api.artifacts_show(name, version=version)
    except ArtifactNotFoundError:
        versions = ", ".join(entry["version"] for entry in gto.api.show(".", name))
        raise PipelineError(f"{name}@{version}: no such version (versions: {versions})") from None
    return version, found["rev"], Path(found["path"])


def committed_revision(reference: str) -> str:
    """The git commit a revision or experiment name of this repository names, or one line
    listing what there is."""
    import dvc.api
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    try:
        with Repo() as repo:
            return resolve_rev(repo.scm, reference)
    except RevError:
        experiments = [
            row["Experiment"] for row in dvc.api.exp_show() if row.get("Experiment") is not None
        ]
        raise PipelineError(
            f"{reference}: not a model file, a registered model (NAME@VERSION or NAME#STAGE), "
            f"a git revision or an experiment of this repository (registered: "
            f"{', '.join(registered_models()) or 'none'}; branches: "
            f"{', '.join(dvc.api.all_branches()) or 'none'}; experiments: "
            f"{', '.join(experiments) or 'none'})"
        ) from None


def locked_md5(revision: str | None, path: Path) -> str:
    """The md5 that dvc.lock records for `path` at `revision` (None: the workspace's)."""
    if revision is None:
        text = paths.DVC_LOCK_FILE.read_text()
    else:
        import dvc.api

        text = dvc.api.read(str(paths.DVC_LOCK_FILE), rev=revision)
    for stage in YAML(typ="safe").load(text).get("stages", {}).values():
        for out in stage.get("outs", []):
            if out["path"] == path.as_posix():
                return out["md5"]
    where = f"revision {revision[:7]}" if revision else "the workspace"
    raise PipelineError(f"{path}: not an output in dvc.lock of {where}")


def download(source: ModelSource, cached: Path) -> None:
    """Fetch `source`'s file of its revision into `cached` (its md5 checked) from the DVC cache
    or remote; a download cut short leaves only a temporary that the next one removes."""
    import dvc.api

    where = f"{source.path} of revision {source.revision[:7]}"
    log.info("%s: fetching %s", source.reference, where)
    with atomic_file(cached) as partial:
        try:
            with (
                dvc.api.open(str(source.path), rev=source.revision, mode="rb") as remote_file,
                partial.open("wb") as target,
            ):
                shutil.copyfileobj(remote_file, target)
        # Whatever DVC, boto or the network raise: one line naming where it looked.
        except Exception as error:
            raise PipelineError(
                f"{source.reference}: cannot fetch {where} from {remote(source.revision)}: "
                f"{one_line(error)}"
            ) from None
        if md5_of_file(partial) != source.md5:
            raise PipelineError(f"{source.reference}: fetched {where}, but not the md5 of dvc.lock")


def remote(revision: str) -> str:
    """The DVC remote that `revision` names as its default: its URL and endpoint."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    try:
        with Repo.open(None, rev=revision) as repo:
            config = repo.config
    except DvcException:
        return "the DVC remote"
    name = config["core"].get("remote")
    if not name:
        return "the DVC cache (no default remote is configured)"
    settings = config["remote"].get(name, {})
    endpoint = settings.get("endpointurl")
    return f"remote {name} ({settings.get('url')}{f', endpoint {endpoint}' if endpoint else ''})"
