"""A vllm release newer than the catalog: its torch pin read from the index's METADATA
(a loopback index), cached for the next run, and a plain statement when it cannot be read."""

from __future__ import annotations

import base64
import contextlib
import json
from typing import TYPE_CHECKING, Any

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from pkgindex import PackageIndex, serve

from uvx_llm import catalog, cli, newer, paths
from uvx_llm.torch_fit import newer_than_catalog

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

SECRET = "hunter2"  # noqa: S105 - the made-up password the tests look for


def _newest() -> Version:
    found = catalog.newest_vllm(catalog.load().vllm)
    assert found is not None
    return found


NEWEST = _newest()
NEXT = f"{NEWEST.major}.{NEWEST.minor + 1}.0"  # a vllm the catalog does not know yet
PLAN = ["plan", "--json", "--cuda", "13.0", "--arch", "9.0"]


@contextlib.contextmanager
def serving(root: Path) -> Iterator[PackageIndex]:
    """A PyPI stand-in whose vllm NEXT pins torch 2.13.0 (not the newest torch the catalog
    knows: the plan must follow the pin, not the assumption)."""
    served = PackageIndex(root)
    served.add("/simple", "vllm", NEXT, requires=["torch==2.13.0", "torchvision==0.28.0"])
    served.add("/simple", "vllm", f"{NEWEST.major}.{NEWEST.minor + 2}.0rc1", requires=["torch==9.0.0"])
    with contextlib.contextmanager(serve)(served) as running:
        yield running


@pytest.fixture
def index(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PackageIndex]:
    with serving(tmp_path_factory.mktemp("index")) as running:
        yield running


def plan(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], *extra: str
) -> dict[str, Any]:
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit) as done:
        cli.run([*PLAN, *extra])
    captured = capsys.readouterr()
    assert done.value.code == 0, captured.err
    shown: dict[str, Any] = json.loads(captured.out)
    shown["stderr"] = captured.err
    return shown


@pytest.fixture
def project(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text(
        f'[project]\nname = "app"\nversion = "0.1.0"\nrequires-python = ">=3.10"\ndependencies = ["vllm=={NEXT}"]\n',
        encoding="utf-8",
    )
    return tmp_path


def torch_bound(shown: dict[str, Any]) -> str:
    return str(
        next(d["choice"] for d in shown["decisions"] if d["topic"] == "bound" and "torch" in d["choice"])
    )


def test_the_torch_pin_is_read_from_the_index_and_then_from_the_cache(
    tmp_path_factory: pytest.TempPathFactory,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with serving(tmp_path_factory.mktemp("index")) as index:
        monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
        shown = plan(project, monkeypatch, capsys)
    assert "2.13" in torch_bound(shown), shown["decisions"]
    pin = next(d for d in shown["decisions"] if d["topic"] == "vllm pin")
    assert pin["choice"] == f"vllm =={NEXT} pins torch==2.13.0"
    assert "read from the index's metadata (not in the catalog)" in pin["reason"]
    assert not any("newer than the catalog" in w for w in shown["warnings"])
    assert any(r.startswith("/files/") for r in index.requests)  # a range read of the wheel
    cached = newer.cache_file(paths.cache_dir(), index.url("/simple"), "vllm", Version(NEXT))
    assert "torch==2.13.0" in cached.read_text(encoding="utf-8")
    # The server is gone: the cache answers.
    assert torch_bound(plan(project, monkeypatch, capsys)) == torch_bound(shown)


def test_pep_658_metadata_is_used_where_the_index_serves_it(
    index: PackageIndex, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index.core_metadata = True
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
    assert "2.13" in torch_bound(plan(project, monkeypatch, capsys))
    assert [r for r in index.requests if r.startswith("/files/")] == [
        next(r for r in index.requests if r.endswith(".whl.metadata"))
    ]


def test_a_range_takes_the_newest_final_release_inside_it(
    index: PackageIndex, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text(encoding="utf-8").replace(f"vllm=={NEXT}", f"vllm>{NEWEST}"),
        encoding="utf-8",
    )
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
    assert "2.13" in torch_bound(plan(project, monkeypatch, capsys))  # not the rc's torch 9


@pytest.mark.parametrize("how", ["--offline", "UV_OFFLINE"])
def test_offline_asks_nothing_and_says_what_it_assumed(
    how: str,
    index: PackageIndex,
    project: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
    if how == "UV_OFFLINE":
        monkeypatch.setenv("UV_OFFLINE", "1")
    shown = plan(project, monkeypatch, capsys, *(["--", "--offline"] if how == "--offline" else []))
    assert index.requests == []
    (warning,) = [w for w in shown["warnings"] if "newer than the catalog" in w]
    assert f"vllm=={NEXT}: that vllm is newer than the catalog (which ends at vllm {NEWEST})" in warning
    assert "could not be read (offline" in warning
    assert "assumed it pins torch ≥ 2.14.0" in warning
    assert "2.14" in torch_bound(shown)


def test_an_unreachable_index_fails_fast_and_plainly(
    project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UV_DEFAULT_INDEX", f"http://alice:{SECRET}@127.0.0.1:9/simple")  # nothing listens
    shown = plan(project, monkeypatch, capsys)
    (warning,) = [w for w in shown["warnings"] if "newer than the catalog" in w]
    assert "could not be read (index unreachable" in warning
    assert SECRET not in json.dumps(shown)


def test_credentials_are_sent_to_the_index_and_never_shown(
    index: PackageIndex, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    index.credentials["/"] = "Basic " + base64.b64encode(f"alice:{SECRET}".encode()).decode()
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple").replace("://", f"://alice:{SECRET}@"))
    shown = plan(project, monkeypatch, capsys, "-v")
    assert "2.13" in torch_bound(shown)
    assert SECRET not in json.dumps(shown)
    pin = next(d for d in shown["decisions"] if d["topic"] == "vllm pin")
    assert "***@127.0.0.1" in pin["reason"]
    folder = newer.cache_file(paths.cache_dir(), index.url("/simple"), "vllm", Version(NEXT)).parent
    assert SECRET not in "".join(p.read_text(encoding="utf-8") for p in folder.iterdir())


def test_check_reads_only_the_cache(
    index: PackageIndex, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
    monkeypatch.chdir(project)
    with pytest.raises(SystemExit):
        cli.run(["check"])
    capsys.readouterr()
    assert index.requests == []


def test_a_vllm_the_catalog_knows_is_never_looked_up(
    index: PackageIndex, project: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (project / "pyproject.toml").write_text(
        (project / "pyproject.toml").read_text(encoding="utf-8").replace(f"vllm=={NEXT}", f"vllm=={NEWEST}"),
        encoding="utf-8",
    )
    monkeypatch.setenv("UV_DEFAULT_INDEX", index.url("/simple"))
    plan(project, monkeypatch, capsys)
    assert index.requests == []


@pytest.mark.parametrize(
    ("spec", "newer_one"),
    [(f"=={NEXT}", True), (f">{NEWEST}", True), (f">={NEWEST}", False), ("<0.5", False), (f"~={NEXT}", True)],
)
def test_which_requirements_are_newer_than_the_catalog(spec: str, *, newer_one: bool) -> None:
    assert newer_than_catalog(SpecifierSet(spec), NEWEST) is newer_one


def test_vllm_never_lowered_its_torch_pin() -> None:
    """The assumption made when a newer vllm's METADATA cannot be read (docs/decisions.md)."""
    pins = [pin.torch for pin in catalog.load().vllm]
    assert pins == sorted(pins)
