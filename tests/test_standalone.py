"""A chapter runs on its own, as Binder and Colab run it: copied out of the repository, in an
isolated environment that holds rlnotes (installed from its wheel) and exactly the dependency
closure of ``rlnotes[notebooks]``, with no network.

The environment is a fresh venv without system site-packages. Its third-party packages are the
distributions that ``rlnotes[notebooks]`` requires, recursively, linked file by file from the
project's venv (so the test needs no index and no download, and takes seconds instead of the
minutes a copy of torch would take); rlnotes itself is built with ``pip wheel`` and installed
from that wheel, so the chapter cannot see the repository's sources. A test-only package such as
hypothesis is therefore absent, as it is on Colab.

By default the first chapter runs; set RLNOTES_STANDALONE_ALL=1 to run every chapter.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import cast

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

from conftest import ROOT, load_contract

CONTRACT = load_contract()
CHAPTERS = [p for p in CONTRACT.chapter_notebooks(ROOT) if CONTRACT.is_chapter(p)]
RUN = CHAPTERS if os.environ.get("RLNOTES_STANDALONE_ALL") else CHAPTERS[:1]


def rlnotes_requirements(extra: str) -> list[str]:
    """rlnotes's own requirements with ``extra``, read from pyproject.toml (the installed
    metadata of an editable install may be older than the file)."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs: list[str] = list(project["dependencies"])
    todo, done = [extra], set()
    while todo:
        name = todo.pop()
        if name in done:
            continue
        done.add(name)
        for dep in project["optional-dependencies"][name]:
            req = Requirement(dep)
            if req.name == "rlnotes":
                todo.extend(req.extras)
            else:
                reqs.append(dep)
    return reqs


def closure(requirements: list[str]) -> set[str]:
    """Names of the installed distributions that ``requirements`` need, recursively."""
    seen: set[str] = set()
    todo = [Requirement(r) for r in requirements]
    while todo:
        req = todo.pop()
        name = re.sub(r"[-_.]+", "-", req.name.lower())
        extras = set(req.extras)
        key = f"{name}[{','.join(sorted(extras))}]"
        if key in seen:
            continue
        seen.add(key)
        dist = metadata.distribution(name)
        # Environment is a TypedDict of str values, which mypy reads only as Mapping[str, object]
        # (packaging's own Marker.evaluate casts it the same way).
        env = cast("dict[str, str]", dict(default_environment()))
        for text in dist.requires or []:
            sub = Requirement(text)
            # A marker `extra == "x"` holds only for the extras asked for; others hold with none.
            if sub.marker is None or any(
                sub.marker.evaluate({**env, "extra": e}) for e in ["", *sorted(extras)]
            ):
                todo.append(sub)
    return {k.split("[", 1)[0] for k in seen}


def _link_distribution(name: str, site: Path) -> None:
    """Symlink the top-level files and folders of an installed distribution into ``site``."""
    dist = metadata.distribution(name)
    base = Path(str(dist.locate_file("")))
    tops = {Path(str(f)).parts[0] for f in dist.files or [] if not str(f).startswith("..")}
    for top in tops:
        source, target = base / top, site / top
        if source.exists() and not target.exists() and top != "__pycache__":
            target.symlink_to(source)


@pytest.fixture(scope="module")
def standalone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The python of an isolated environment with rlnotes from its wheel."""
    tmp = tmp_path_factory.mktemp("standalone")
    # Build from a copy of what the wheel needs, so that setuptools leaves no build/ in the tree.
    source = tmp / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "rlnotes", source / "rlnotes", ignore=shutil.ignore_patterns("__pycache__")
    )
    wheels = tmp / "wheels"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            str(source),
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--quiet",
            "-w",
            str(wheels),
        ],
        check=True,
        capture_output=True,
    )
    env_dir = tmp / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], check=True)
    python = env_dir / "bin" / "python"
    site = Path(
        subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
    )
    assert site != Path(sysconfig.get_path("purelib"))
    for name in sorted(closure(rlnotes_requirements("notebooks"))):
        _link_distribution(name, site)
    (wheel,) = wheels.glob("rlnotes-*.whl")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--no-deps",
            "--no-index",
            "--quiet",
            str(wheel),
        ],
        check=True,
        capture_output=True,
    )
    yield python


def _isolated_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env.update({"PIP_NO_INDEX": "1", "GIT_ALLOW_PROTOCOL": "file", "MPLBACKEND": "Agg"})
    return env


def test_the_environment_is_isolated(standalone: Path, tmp_path: Path) -> None:
    code = (
        "import importlib.util, rlnotes, sys\n"
        "print(rlnotes.__file__)\n"
        "print(importlib.util.find_spec('hypothesis') is None, importlib.util.find_spec('pytest')"
        " is None)\n"
    )
    out = subprocess.run(
        [str(standalone), "-c", code],
        cwd=tmp_path,
        env=_isolated_env(),
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split("\n")
    assert str(ROOT) not in out[0], f"rlnotes comes from the repository: {out[0]}"
    assert "site-packages" in out[0]
    assert out[1] == "True True", "test-only packages are importable in the reader's environment"


def test_the_setup_cell_stops_with_a_message_when_install_fails(tmp_path: Path) -> None:
    """Where rlnotes is missing and cannot be installed, the setup cell raises SystemExit with
    a message that names the URL, instead of letting the chapter fail later."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    import yaml

    url = yaml.safe_load((ROOT / "_config.yml").read_text())["repository"]["url"]
    proc = subprocess.run(
        [str(bare / "bin" / "python"), "-c", CONTRACT.setup_cell(url)],
        cwd=tmp_path,
        env=_isolated_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
    assert f"Could not install rlnotes from git+{url}.git" in proc.stderr


@pytest.mark.parametrize("chapter", RUN, ids=[p.name for p in RUN])
def test_chapter_runs_outside_the_repository(
    standalone: Path, chapter: Path, tmp_path: Path
) -> None:
    work = tmp_path / "reader"
    work.mkdir()
    copy = work / chapter.name
    shutil.copy(chapter, copy)
    runner = (
        "import sys, nbformat\n"
        "from nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=600, kernel_name='python3',\n"
        "               resources={'metadata': {'path': sys.argv[2]}}).execute()\n"
        "nbformat.write(nb, sys.argv[1])\n"
    )
    proc = subprocess.run(
        [str(standalone), "-c", runner, str(copy), str(work)],
        cwd=work,
        env=_isolated_env(),
        capture_output=True,
        text=True,
    )
    tail = (proc.stdout + proc.stderr)[-4000:]
    assert proc.returncode == 0, f"{chapter.name} fails outside the repository:\n{tail}"
    nb = json.loads(copy.read_text(encoding="utf-8"))
    errors = [o for c in nb["cells"] for o in c.get("outputs", []) if o["output_type"] == "error"]
    assert not errors


def test_every_import_a_chapter_may_make_works_there(standalone: Path, tmp_path: Path) -> None:
    """Positive control, independent of the chapters' state: a notebook that imports every
    package the contract allows and glues a figure runs in the reader's environment."""
    import nbformat

    nb = nbformat.v4.new_notebook()
    nb.cells = [
        nbformat.v4.new_code_cell(CONTRACT.setup_cell("https://github.com/example/rlnotes")),
        nbformat.v4.new_code_cell(
            "import " + ", ".join(sorted(CONTRACT.ALLOWED_IMPORTS)) + "\n"
            "import matplotlib.pyplot as plt\nfrom myst_nb import glue\n"
            "fig, ax = plt.subplots()\nax.plot([0, 1])\nglue('fig-x', fig, display=False)\n"
            "print(rlnotes.__file__)"
        ),
    ]
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    runner = (
        "import sys, nbformat\nfrom nbclient import NotebookClient\n"
        "nb = nbformat.read(sys.argv[1], as_version=4)\n"
        "NotebookClient(nb, timeout=300, kernel_name='python3').execute()\n"
        "print(nb.cells[1].outputs[-1]['text'])\n"
    )
    proc = subprocess.run(
        [str(standalone), "-c", runner, str(path)],
        cwd=tmp_path,
        env=_isolated_env(),
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-3000:]
    assert "site-packages" in proc.stdout and str(ROOT) not in proc.stdout
