"""Models by reference, for every command that reads digits (`--model`).

A reference is a model file, or one of this repository's models by name: `NAME@VERSION` or
`NAME#STAGE` of the model registry (the `artifacts:` of dvc.yaml, versions and stages as GTO's
git tags), or a git revision or experiment name (its `models/model.tflite`). A named model is
found through DVC's API, fetched from the DVC cache or the remote, and kept in the user cache under
its md5 in dvc.lock: the next start needs no network.
"""

import contextlib
import json
import logging
import os
import shutil
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ruamel.yaml import YAML

from mnist_pipeline.plumbing import paths
from mnist_pipeline.plumbing.errors import PipelineError, one_line
from mnist_pipeline.plumbing.files import atomic_file, check_model_file, locked_folder, md5_of_file

if TYPE_CHECKING:
    from scmrepo.git import Git

log = logging.getLogger(__name__)

MODEL_SUFFIXES = (".tflite", ".keras")
MODEL_NAME = "mnist-mlp"  # the pipeline's model in the registry: its artifact in dvc.yaml
# What DVC names a repository's own cache, opened at a revision with no remote configured, as the
# remote to fetch from (dvc/repo/open_repo.py, _get_remote_config).
DVC_CACHE_AS_REMOTE = "auto-generated-upstream"
# A revision's model: its LiteRT export, or from before the export (243cac3) its Keras model.
REVISION_MODELS = (paths.SERVING_MODEL_FILE, paths.MODEL_FILE)


@dataclass(frozen=True)
class ModelSource:
    """Which model answers: a file of the workspace, or an output of a git revision."""

    reference: str  # as given: a path, NAME@VERSION, NAME#STAGE, a revision or an experiment
    path: Path  # the file, in the workspace or (with a revision) as committed in that revision
    md5: str
    version: str | None = None  # of the registry, for NAME@VERSION and NAME#STAGE
    revision: str | None = None  # the git commit it was committed in; None for a file

    def label(self, served_as: str | None = None) -> str:
        """E.g. `mnist-mlp#prod (v1.0.0, revision 1a2b3c4, md5 26393acb)`; served by the web
        server, its TensorFlow Serving version last (`, served as version 1000000`)."""
        details = [
            *([self.version] if self.version else []),
            *([f"revision {self.revision[:7]}"] if self.revision else []),
            f"md5 {self.md5[:8]}",
            *([f"served as version {served_as}"] if served_as else []),
        ]
        return f"{self.reference} ({', '.join(details)})"

    def as_dict(self) -> dict[str, str | None]:
        return {
            "reference": self.reference,
            "version": self.version,
            "revision": self.revision,
            "md5": self.md5,
        }


def resolve(reference: str) -> ModelSource:
    """The model `reference` names; a missing file is a ModelFileError (the one check of a
    model load: load_classifier trusts the file is there).

    A file that is there, or a name with a model's suffix, is a file; NAME@VERSION or NAME#STAGE
    with a NAME the registry holds is a registered model; anything else a git revision
    (`origin/main` and `HEAD@{1}` too) or an experiment name.
    """
    file = Path(reference)
    if file.is_file() or file.suffix in MODEL_SUFFIXES:
        check_model_file(file)
        return ModelSource(reference, file, md5_of_file(file))
    with git_errors(reference, check_project(reference)):
        name, at, version = reference.partition("@")
        name, hash_sign, stage = name.partition("#")
        if (at or hash_sign) and name in registered_models():
            version, revision, path = registered(reference)
        else:
            version, revision, path = None, committed_revision(reference), None
        try:
            path, md5 = locked_model(revision, path)
        except PipelineError as error:
            raise PipelineError(f"{reference}: {error}") from None
        return ModelSource(reference, path, md5, version, revision)


@contextlib.contextmanager
def git_errors(reference: str, root: Path) -> Iterator[None]:
    """What git (libgit2, under DVC and GTO) refuses about this repository as one line: such as a
    repository owned by another user, which git reads only once it is a safe.directory."""
    import pygit2

    try:
        yield
    except pygit2.GitError as error:
        advice = (
            f"; if you trust it, run `git config --global --add safe.directory {root}`"
            if "not owned by current user" in str(error)
            else ""
        )
        raise PipelineError(
            f"{reference}: git cannot read this repository: {error}{advice}"
        ) from None


def check_project(reference: str) -> Path:
    """The root of the DVC project the current folder is in, to look `reference` up in; or a
    PipelineError."""
    from dvc.exceptions import NotDvcRepoError
    from dvc.repo import Repo

    try:
        return Path(Repo.find_root())
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
        return locked_model(None, paths.SERVING_MODEL_FILE)[1] == md5
    except PipelineError:  # a dvc.lock from before the export
        return False


def local_file(source: ModelSource) -> Path:
    """A file of this machine holding the model: the workspace's, or the revision's output kept
    in the user cache, its md5 checked at each use (2.4 ms for the pipeline's 1.6 MB model):
    fetched the first time, and again if the cached copy is no longer the model of dvc.lock."""
    if source.revision is None:
        return source.path
    folder = cache_folder()
    cached = folder / f"{source.md5}{source.path.suffix}"
    # One download at a time, across processes: a second waits, then finds the model there.
    with locked_folder(folder):
        if cached.is_file() and (found := md5_of_file(cached)) == source.md5:
            log.debug("%s: %s from the user cache", source.reference, cached)
            return cached
        if cached.is_file():
            log.warning(
                "%s: %s has md5 %s, not the md5 of dvc.lock: fetching it again",
                source.reference,
                cached,
                found[:8],
            )
            cached.unlink()
        download(source, cached)
    return cached


def cache_folder() -> Path:
    """The user cache's folder of models, made private (0o700) where new; one line if it cannot
    be made, or if anyone else may write there (and so plant a model under an md5 it has not).
    The cache's root, which the fetch stage makes with the user's umask, may be writable by the
    user's group (umask 002 gives each user a group of their own), not by everyone."""
    root = paths.user_cache_dir()
    setting = os.environ.get(paths.CACHE_ENV)
    named = f"{paths.CACHE_ENV}={setting}" if setting else "the user cache"
    for folder, others in ((root, 0o002), (root / "models", 0o022)):
        try:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
            status = folder.stat()
        except FileExistsError:
            raise PipelineError(f"{named}: cannot keep models in {folder}: not a folder") from None
        except OSError as error:
            raise PipelineError(
                f"{named}: cannot keep models in {folder}: {error.strerror}"
            ) from None
        if status.st_uid != os.getuid() or status.st_mode & others:
            whose = (
                f"owned by user {status.st_uid}"
                if status.st_uid != os.getuid()
                else f"{stat.filemode(status.st_mode)}: writable by others"
            )
            raise PipelineError(
                f"{named}: others could plant a model in {folder} ({whose}): run "
                f"`chmod go-w {folder}` if it is yours, or point {paths.CACHE_ENV} at a folder "
                "of your own"
            )
    return root / "models"


def registered_models() -> list[str]:
    """The names of the models in this repository's registry (GTO's git tags)."""
    import gto.api

    return sorted(gto.api.show("."))


def registered(reference: str) -> tuple[str, str, Path]:
    """The version, git revision and file of a registered model, by NAME@VERSION or NAME#STAGE;
    or one line listing the versions or stages there are."""
    import dvc.api
    import gto.api
    from dvc.exceptions import ArtifactNotFoundError

    name, at, version = reference.partition("@")
    name, hash_sign, stage = name.partition("#")
    commits = {entry["version"]: entry["commit_hexsha"] for entry in gto.api.show(".", name)}
    versions = ", ".join(commits)
    stages = ", ".join(gto.api.get_stages(".", used=True)) or "none"
    if at and hash_sign:
        raise PipelineError(
            f"{reference}: a version or a stage, not both (NAME@VERSION or NAME#STAGE)"
        )
    if at and not version:
        raise PipelineError(f"{reference}: no version after @ (versions: {versions})")
    if hash_sign and not stage:
        raise PipelineError(f"{reference}: no stage after # (stages: {stages})")
    if stage:
        in_stage = gto.api.find_versions_in_stage(".", name, stage)
        if not in_stage:
            raise PipelineError(f"{reference}: no version in stage {stage} (stages: {stages})")
        version = in_stage[0].version
    try:
        found = dvc.api.artifacts_show(name, version=version)
    except ArtifactNotFoundError:
        if version not in commits:
            raise PipelineError(f"{reference}: no such version (versions: {versions})") from None
        raise PipelineError(
            f"{reference}: version {version} is registered on commit {commits[version][:7]}, "
            f"whose dvc.yaml declares no artifact {name}: register a commit whose dvc.yaml does"
        ) from None
    return version, found["rev"], Path(found["path"])


def committed_revision(reference: str) -> str:
    """The git commit a revision or experiment name of this repository names, or one line
    listing what there is, or saying why it is not a commit or which of two it could be."""
    import dvc.api
    from dvc.repo import Repo
    from dvc.scm import RevError, resolve_rev

    with Repo() as repo:
        try:
            revision = resolve_rev(repo.scm, reference)
        except RevError:
            experiments = [
                row["Experiment"] for row in dvc.api.exp_show() if row.get("Experiment") is not None
            ]
            raise PipelineError(
                f"{reference}: not a model file, a registered model (NAME@VERSION or "
                f"NAME#STAGE), a git revision or an experiment of this repository (registered: "
                f"{', '.join(registered_models()) or 'none'}; branches: "
                f"{', '.join(dvc.api.all_branches()) or 'none'}; experiments: "
                f"{', '.join(experiments) or 'none'})"
            ) from None
        kind = repo.scm.pygit2.repo.get(revision).type_str
        if kind != "commit":
            raise PipelineError(
                f"{reference}: a git {kind} ({'a folder' if kind == 'tree' else 'a file'} of a "
                "commit), not a commit: name a commit, a branch, a tag or an experiment"
            )
        check_unambiguous(repo.scm, reference, revision)
    return revision


def check_unambiguous(scm: "Git", reference: str, revision: str) -> None:
    """Refuse a name that git resolves (a branch, a tag) to `revision` while an experiment of
    the same name is another commit: DVC would silently take git's."""
    from dvc.repo.experiments.utils import AmbiguousExpRefInfo, resolve_name

    if reference.startswith("refs/"):
        return
    try:
        experiments = [resolve_name(scm, reference)[reference]]
    except AmbiguousExpRefInfo as error:
        experiments = error.ref_infos
    others = [str(ref) for ref in experiments if ref and scm.get_ref(str(ref)) != revision]
    if others:
        named = [ref for ref in (f"refs/heads/{reference}", f"refs/tags/{reference}")
                 if scm.get_ref(ref)] or [revision]  # fmt: skip
        refs = [f"{ref} (commit {revision[:7]})" for ref in named] + [
            f"{ref} (commit {scm.get_ref(ref)[:7]})" for ref in others
        ]
        raise PipelineError(
            f"{reference}: names both a git revision and an experiment, two different models; "
            f"name one by its full ref: {' or '.join(refs)}"
        )


def locked_model(revision: str | None, path: Path | None = None) -> tuple[Path, str]:
    """The model file of `revision` (None: the workspace's) and the md5 dvc.lock records for it:
    `path`, or else the first of REVISION_MODELS that dvc.lock names."""
    outputs = locked_outputs(revision)
    for candidate in [path] if path else REVISION_MODELS:
        if candidate.as_posix() in outputs:
            return candidate, outputs[candidate.as_posix()]
    where = f"revision {revision[:7]}" if revision else "the workspace"
    raise PipelineError(f"{path or REVISION_MODELS[0]}: not an output in dvc.lock of {where}")


def locked_outputs(revision: str | None) -> dict[str, str]:
    """Each output's path and md5 in dvc.lock at `revision` (None: the workspace's)."""
    if revision is None:
        text = paths.DVC_LOCK_FILE.read_text()
    else:
        import dvc.api
        from dvc.exceptions import PathMissingError

        try:
            text = dvc.api.read(str(paths.DVC_LOCK_FILE), rev=revision)
        except PathMissingError:
            raise PipelineError(
                f"revision {revision[:7]} has no {paths.DVC_LOCK_FILE}: no model was built in it"
            ) from None
    stages = (YAML(typ="safe").load(text) or {}).get("stages", {}).values()
    return {out["path"]: out["md5"] for stage in stages for out in stage.get("outs", [])}


def download(source: ModelSource, cached: Path) -> None:
    """Fetch `source`'s file of its revision into `cached` (its md5 checked; readable by this
    user alone) from the DVC cache or remote; a download cut short leaves only a temporary that
    the next one removes."""
    import dvc.api
    from dvc.exceptions import PathMissingError

    where = f"{source.path} of revision {source.revision[:7]}"
    log.info("%s: fetching %s", source.reference, where)
    with atomic_file(cached, mode=0o600) as partial:
        try:
            with (
                dvc.api.open(str(source.path), rev=source.revision, mode="rb") as remote_file,
                partial.open("wb") as target,
            ):
                shutil.copyfileobj(remote_file, target)
        except (PathMissingError, FileNotFoundError):
            raise PipelineError(
                f"{source.reference}: {where} is not in {remote(source.revision)}: it was never "
                f"built there or never pushed; run `dvc repro` at revision {source.revision[:7]} "
                "to build it, or `dvc push` where it was built"
            ) from None
        # Whatever DVC, boto or the network raise: one line naming where it looked.
        except Exception as error:
            raise PipelineError(
                f"{source.reference}: cannot fetch {where} from {remote(source.revision)}: "
                f"{one_line(error)}"
            ) from None
        if (fetched := md5_of_file(partial)) != source.md5:
            raise PipelineError(
                f"{source.reference}: fetched {where} from {remote(source.revision)}, but its md5 "
                f"is {fetched}, not {source.md5} of dvc.lock: kept nothing"
            )


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
    if name in (None, DVC_CACHE_AS_REMOTE):
        return "the DVC cache (no remote is configured)"
    settings = config["remote"].get(name, {})
    endpoint = settings.get("endpointurl")
    return f"remote {name} ({settings.get('url')}{f', endpoint {endpoint}' if endpoint else ''})"
