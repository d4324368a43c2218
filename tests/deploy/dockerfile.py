"""The Dockerfile, read as data: its stages and instructions, our rules for a function image, and a stand-in build
that reproduces an image's filesystem without a Docker engine.

The stand-in build follows the target stage's FROM chain: ARG, ENV, WORKDIR, USER and CMD as Docker evaluates them;
COPY from the repository; COPY --from another stage by building that stage first; RUN in a shell. The image's
absolute folders (/opt/venv, /app, /build) are mapped to folders of the caller's choosing. What it cannot reproduce
is the base image and the OS user it creates (`useradd`), so it runs no `useradd`; the caller runs the result as a
non-root user of its own, with a Python 3.11 interpreter standing in for the base image's.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"
FUNCTION_STAGE = "function"
# shared/serve.py: runs functions/$FUNCTION/function.toml's server in its own process.
LAUNCHER = ["python", "-m", "shared.serve"]
# The base image's Python: 3.11, able to create a venv with pip.
PYTHON_PROBE = "import sys, venv, ensurepip; assert sys.version_info[:2] == (3, 11)"
_VARIABLE = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))")


@dataclass
class Instruction:
    keyword: str
    arguments: str
    flags: dict[str, str] = field(default_factory=dict)


@dataclass
class Stage:
    name: str
    base: str
    instructions: list[Instruction]


@dataclass
class Dockerfile:
    global_args: dict[str, str | None]
    stages: dict[str, Stage]

    def chain(self, target: str) -> list[Stage]:
        """The stage and the stages it is built FROM, base first."""
        stages = []
        name = target
        while name in self.stages:
            stages.insert(0, self.stages[name])
            name = self.stages[name].base
        if not stages:
            raise KeyError(f"no stage {target!r}")
        return stages

    def effective(self, target: str, keyword: str) -> Instruction | None:
        """The last `keyword` instruction in force for the target (USER, CMD, ...)."""
        found = [i for stage in self.chain(target) for i in stage.instructions if i.keyword == keyword]
        return found[-1] if found else None

    def command(self, target: str) -> list[str]:
        cmd = self.effective(target, "CMD")
        if cmd is None:
            raise ValueError(f"stage {target} has no CMD")
        return json.loads(cmd.arguments)


def parse(text: str) -> Dockerfile:
    global_args: dict[str, str | None] = {}
    stages: dict[str, Stage] = {}
    current: Stage | None = None
    for line in _logical_lines(text):
        keyword, _, rest = line.partition(" ")
        keyword = keyword.upper()
        flags = {}
        while rest.startswith("--"):
            flag, _, rest = rest.partition(" ")
            name, _, value = flag[2:].partition("=")
            flags[name] = value
            rest = rest.lstrip()
        if keyword == "FROM":
            words = rest.split()
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else str(len(stages))
            current = Stage(name=name, base=words[0], instructions=[])
            stages[name] = current
        elif current is None and keyword == "ARG":
            arg_name, _, default = rest.partition("=")
            global_args[arg_name] = default or None
        elif current is not None:
            current.instructions.append(Instruction(keyword, rest.strip(), flags))
    return Dockerfile(global_args, stages)


def _logical_lines(text: str) -> list[str]:
    lines, pending = [], ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not pending and (not stripped or stripped.startswith("#")):
            continue
        if pending and stripped.startswith("#"):
            continue
        if stripped.endswith("\\"):
            pending += stripped[:-1] + " "
            continue
        lines.append((pending + stripped).strip())
        pending = ""
    return lines


def expand(value: str, variables: dict[str, str]) -> str:
    return _VARIABLE.sub(lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def rule_problems(dockerfile: Dockerfile, text: str) -> list[str]:
    """Our rules for the function images; each problem starts with the rule's name."""
    found = []
    if FUNCTION_STAGE not in dockerfile.stages:
        return [f"stages: no `{FUNCTION_STAGE}` stage"]
    if list(dockerfile.stages)[-1] != FUNCTION_STAGE:
        found.append(f"stages: `{FUNCTION_STAGE}` must be the last stage, so a plain `docker build` is production")
    base = dockerfile.chain(FUNCTION_STAGE)[0].base
    image = expand(base, {k: v or "" for k, v in dockerfile.global_args.items()})
    if not re.search(r"python:[0-9.]+-slim", image):
        found.append(f"base: {image!r} is not a slim Python image")
    for target in [name for name in dockerfile.stages if name not in ("base", "dependencies")]:
        user = dockerfile.effective(target, "USER")
        if user is None or user.arguments.split(":")[0] in {"root", "0"}:
            found.append(f"non-root: stage {target} runs as root")
    if dockerfile.command(FUNCTION_STAGE) != LAUNCHER:
        found.append(f"entrypoint: the command must be {json.dumps(LAUNCHER)} in exec form (the server its manifest "
                     "declares runs as PID 1 and drains on SIGTERM; a shell in between swallows it)")
    installs = [i.arguments for i in dockerfile.stages.get("dependencies", Stage("", "", [])).instructions
                if i.keyword == "RUN" and "pip install" in i.arguments]
    extras = [i.arguments for i in dockerfile.stages.get("dependencies", Stage("", "", [])).instructions
              if i.keyword == "ARG" and i.arguments.startswith("EXTRAS=")]
    if not installs or '".[${EXTRAS}]"' not in installs[0] or extras != ["EXTRAS=${FUNCTION}"]:
        found.append("dependencies: install `.[${EXTRAS}]` with EXTRAS defaulting to FUNCTION: only the function's "
                     "own dependency group")
    copies = [i.arguments.split()[0] for stage in dockerfile.chain(FUNCTION_STAGE) for i in stage.instructions
              if i.keyword == "COPY" and "from" not in i.flags]
    allowed = {"shared/", "functions/__init__.py", "functions/${FUNCTION}/"}
    if set(copies) != allowed:
        found.append(f"code: the function image copies exactly {sorted(allowed)}, found {copies}")
    environment = " ".join(i.arguments for s in dockerfile.chain(FUNCTION_STAGE) for i in s.instructions
                           if i.keyword == "ENV")
    function_runs = [i.arguments for i in dockerfile.stages[FUNCTION_STAGE].instructions if i.keyword == "RUN"]
    if "PYTHONDONTWRITEBYTECODE=1" not in environment or not any("compileall" in run for run in function_runs):
        found.append("bytecode: compile the code at build time (compileall) and write none at run time "
                     "(PYTHONDONTWRITEBYTECODE=1): the root filesystem is read-only")
    return found


@dataclass
class BuiltImage:
    """What the stand-in build produced: the command, its environment and working folder, and the final USER."""

    command: list[str]
    environment: dict[str, str]
    workdir: Path
    user: str


class StandInBuild:
    def __init__(self, dockerfile: Dockerfile, build_args: dict[str, str], roots: dict[str, Path],
                 python: str, built: set[str] = frozenset(), repo: Path = REPO_ROOT):
        """`roots` maps the image's absolute folders to real ones; `python` stands in for the base image's;
        `built` names stages whose output is already in place (their mapped folders are shared)."""
        self.dockerfile = dockerfile
        self.build_args = build_args
        self.roots = roots
        self.repo = repo
        self.python_dir = roots["/"] / "python-bin"
        self.python_dir.mkdir(parents=True, exist_ok=True)
        for name in ("python", "python3"):
            link = self.python_dir / name
            if not link.exists():
                link.symlink_to(python)
        self.built = set(built)

    def build(self, target: str) -> BuiltImage:
        variables, workdir, user = self._build(target)
        return BuiltImage(self.dockerfile.command(target), variables, workdir, user)

    def _build(self, target: str) -> tuple[dict[str, str], Path, str]:
        variables = {"PATH": f"{self.python_dir}:/usr/local/bin:/usr/bin:/bin"}
        args = {name: self.build_args.get(name, default or "") for name, default in
                self.dockerfile.global_args.items()}
        workdir = self.roots["/"]
        user = "root"
        for stage in self.dockerfile.chain(target):
            scope = dict(args)
            for instruction in stage.instructions:
                text = instruction.arguments
                if instruction.keyword == "ARG":
                    name, _, default = text.partition("=")
                    scope[name] = self.build_args.get(name, expand(default, {**variables, **scope}))
                elif instruction.keyword == "ENV":
                    for pair in shlex.split(text):
                        name, _, value = pair.partition("=")
                        variables[name] = self.map_path(expand(value, {**scope, **variables}))
                elif instruction.keyword == "WORKDIR":
                    workdir = Path(self.map_path(expand(text, {**scope, **variables})))
                    workdir.mkdir(parents=True, exist_ok=True)
                elif instruction.keyword == "USER":
                    user = text
                elif instruction.keyword == "COPY":
                    self._copy(instruction, {**scope, **variables}, workdir)
                elif instruction.keyword == "RUN" and not text.startswith("useradd"):
                    # The host's environment passes through (proxies, pip's configuration and cache), as
                    # Docker passes proxy build arguments.
                    result = subprocess.run(["/bin/sh", "-c", text], cwd=workdir, capture_output=True, text=True,
                                            env={**os.environ, **scope, **variables})
                    if result.returncode != 0:
                        raise RuntimeError(f"RUN {text}\nfailed:\n{result.stdout}{result.stderr}")
        return variables, workdir, user

    def map_path(self, value: str) -> str:
        for image_path, real in sorted(self.roots.items(), key=lambda item: -len(item[0])):
            if image_path != "/" and (value == image_path or value.startswith(image_path + "/")):
                return str(real) + value[len(image_path):]
        return value

    def _copy(self, instruction: Instruction, variables: dict[str, str], workdir: Path) -> None:
        words = [expand(word, variables) for word in instruction.arguments.split()]
        sources, destination = words[:-1], words[-1]
        if "from" in instruction.flags:
            # Stages share the mapped folders, so building the source stage puts its files in place.
            if instruction.flags["from"] not in self.built:
                self._build(instruction.flags["from"])
                self.built.add(instruction.flags["from"])
            return
        target = Path(self.map_path(destination)) if destination.startswith("/") else workdir / destination
        for source in sources:
            path = self.repo / source
            if path.is_dir():
                shutil.copytree(path, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
            elif destination.endswith("/") or len(sources) > 1:
                target.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target / path.name)
            else:
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, target)


def non_root_run_environment(image: BuiltImage, extra: dict[str, str]) -> dict[str, str]:
    """The container's environment: the image's ENV plus what Kubernetes would inject, and no writable home."""
    return {**image.environment, "HOME": "/nonexistent", **extra}


def free_python(candidates: list[str], user: tuple[int, int] | None) -> str:
    """The first Python 3.11 interpreter the run-time user can execute."""
    for candidate in candidates:
        if not candidate or not os.path.exists(candidate):
            continue
        try:
            probe = subprocess.run([candidate, "-c", PYTHON_PROBE], capture_output=True,
                                   user=user[0] if user else None, group=user[1] if user else None)
        except OSError:
            continue
        if probe.returncode == 0:
            return candidate
    raise RuntimeError(f"no Python 3.11 usable by the run-time user among {candidates}")
