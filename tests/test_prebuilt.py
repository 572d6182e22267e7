"""The prebuilt route's decisions, pure: which release wheel fits, or why none does."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from helpers import H200, gpu_machine, make, proj
from packaging.specifiers import SpecifierSet

from uvx_llm import actions, prebuilt

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog, TorchRelease
    from uvx_llm.project import Project


def release(cat: Catalog, series: str) -> TorchRelease:
    return next(r for r in cat.torch if r.release == series)


def project_for(python: str = ">=3.10", *deps: str) -> Project:
    listed = ", ".join(f'"{d}"' for d in deps or ("torch", "flash-attn"))
    return proj(
        f'[project]\nname = "d"\nversion = "0"\nrequires-python = "{python}"\ndependencies = [{listed}]\n'
    )


def find(
    cat: Catalog, series: str, variant: str, pythons: tuple[str, ...], spec: str = ""
) -> prebuilt.Result:
    return prebuilt.find(
        catalog=cat,
        package="flash-attn",
        specifier=SpecifierSet(spec),
        release=release(cat, series),
        variant=variant,
        pythons=pythons,
    )


def test_the_asset_names_follow_flash_attns_setup_py(cat: Catalog) -> None:
    found = find(cat, "2.8", "cu129", ("3.12",))
    assert isinstance(found, prebuilt.Route)
    assert found.version.public == "2.8.3.post1"
    url = (
        "https://github.com/Dao-AILab/flash-attention/releases/download/v2.8.3.post1/"
        "flash_attn-2.8.3.post1+cu12torch2.8cxx11abiTRUE-cp312-cp312-linux_x86_64.whl"
    )
    assert [w.url for w in found.wheels] == [url]
    assert prebuilt.sources(found) == [
        {
            "url": found.wheels[0].url,
            "marker": "sys_platform == 'linux' and platform_machine == 'x86_64' and python_version == '3.12'",
        }
    ]
    assert prebuilt.ours(prebuilt.sources(found))
    assert not prebuilt.ours({"index": "pytorch-cu129"})


def test_old_abi_torch_2_6_skips_the_broken_2_8_wheels_for_2_7_4_post1(cat: Catalog) -> None:
    # The torch 2.6 trap: 2.8.x's cxx11abiFALSE torch2.6 wheels were built against the cu126
    # (C++11 ABI) torch and fail to import on cu124's old-ABI build.
    found = find(cat, "2.6", "cu124", ("3.11",))
    assert isinstance(found, prebuilt.Route)
    assert str(found.version) == "2.7.4.post1"
    assert "cu12torch2.6cxx11abiFALSE-cp311" in found.wheels[0].url
    on_cu126 = find(cat, "2.6", "cu126", ("3.11",))
    assert isinstance(on_cu126, prebuilt.Route)
    assert str(on_cu126.version) == "2.8.3.post1"
    assert "cxx11abiTRUE" in on_cu126.wheels[0].url


def test_each_reason_a_wheel_does_not_fit_is_named(cat: Catalog) -> None:
    newer = find(cat, "2.11", "cu128", ("3.11",))
    assert isinstance(newer, prebuilt.Miss)
    assert "no wheels for torch 2.11" in newer.reason
    cuda13 = find(cat, "2.9", "cu130", ("3.11",))
    assert isinstance(cuda13, prebuilt.Miss)
    too_new_python = find(cat, "2.4", "cu124", ("3.12", "3.13"), "==2.8.2")
    assert isinstance(too_new_python, prebuilt.Miss)
    assert "no wheels for Python 3.13" in too_new_python.reason  # 2.8.0-2.8.2 have no torch 2.4 x cp313
    unknown = find(cat, "2.8", "cu128", ("3.11",), "==2.8.3.post2")
    assert isinstance(unknown, prebuilt.Miss)
    assert "publish.yml was not in the checked snapshot" in unknown.reason
    cpu = find(cat, "2.8", "cpu", ("3.11",))
    assert isinstance(cpu, prebuilt.Miss)


def test_a_cuda_13_torch_never_gets_the_cu12_wheel_its_setup_py_would_name(cat: Catalog) -> None:
    row = next(r for r in cat.prebuilt if str(r.versions) == "==2.8.3")
    assert dict(row.cuda_tag)[13] == "12"  # setup.py's quirk, kept as data
    fields, why = prebuilt._check(row, release(cat, "2.8"), "cu130", 13, ("3.11",))
    assert fields is None
    assert "built for CUDA 12" in why


def test_the_project_pythons_stop_where_torch_has_wheels(cat: Catalog) -> None:
    assert prebuilt.project_pythons(project_for(">=3.10"), release(cat, "2.8")) == (
        "3.10",
        "3.11",
        "3.12",
        "3.13",
    )
    assert prebuilt.project_pythons(project_for(">=3.11,<3.13"), release(cat, "2.8")) == ("3.11", "3.12")


def test_mamba_and_causal_conv1d_rows_name_their_own_assets(cat: Catalog) -> None:
    for package, stem in (("mamba-ssm", "mamba_ssm-2.3.0"), ("causal-conv1d", "causal_conv1d-1.5.3.post1")):
        found = prebuilt.find(
            catalog=cat,
            package=package,
            specifier=SpecifierSet(),
            release=release(cat, "2.7"),
            variant="cu128",
            pythons=("3.12",),
        )
        assert isinstance(found, prebuilt.Route), package
        assert f"/{stem}+cu12torch2.7cxx11abiTRUE-cp312-cp312-linux_x86_64.whl" in found.wheels[0].url


def test_prefer_prebuilt_picks_the_newest_torch_with_wheels_and_says_what_newest_would_cost(
    cat: Catalog,
) -> None:
    made = make(project_for(), cat, H200, prefer="prebuilt")
    assert made.backend == "cu129"
    assert made.built_packages == ()
    assert (
        actions.SetBound(
            "torch>=2.8,<2.9", "llm-sync: bound: the cu129 builds of torch 2.8 that the project's pins allow"
        )
        in made.actions
    )
    trade = next(d for d in made.decisions if d.topic == "trade-off")
    assert "torch 2.8 (+cu129) → prebuilt flash-attn, seconds; torch 2.15 (+cu130) → compile" in trade.reason


def test_prefer_newest_compiles_and_names_the_prebuilt_alternative(cat: Catalog) -> None:
    made = make(project_for(), cat, H200, prefer="newest")
    assert made.backend == "cu130"
    assert made.built_packages == ("flash-attn",)
    miss = next(d for d in made.decisions if d.topic == "prebuilt")
    assert miss.choice.startswith("none for flash-attn: compiles")


def test_a_pinned_torch_that_has_wheels_takes_them_under_either_policy(cat: Catalog) -> None:
    target = gpu_machine((12, 8), (9, 0))
    for prefer in prebuilt.PREFER:
        made = make(project_for(">=3.10", "torch==2.7.1", "flash-attn"), cat, target, prefer=prefer)
        assert made.built_packages == (), prefer
        [source] = [a for a in made.actions if isinstance(a, actions.SetSource) and a.package == "flash-attn"]
        assert "torch2.7cxx11abiTRUE" in source.value[0]["url"]


def test_check_keeps_the_recorded_route_and_withdraws_it_when_the_backend_moves(cat: Catalog) -> None:
    first = make(project_for(), cat, H200, prefer="prebuilt")
    from helpers import applied  # noqa: PLC0415 - one test uses it

    written = applied(project_for(), first)
    assert make(written, cat, None, prefer="prebuilt").actions == ()  # `check`: up to date
    moved = make(written, cat, H200, backend="cpu", prefer="prebuilt")
    assert actions.SetSource("flash-attn", None) in moved.actions


@pytest.mark.parametrize(
    ("archs", "jobs", "threads", "cpus", "expected"), [(1, 16, 1, 16, 23.2), (4, 8, 4, 16, 92.7)]
)
def test_the_compile_model_reproduces_the_measured_builds(
    cat: Catalog, archs: int, jobs: int, threads: int, cpus: int, expected: float
) -> None:
    # 1389 s measured for the tuned build (docs/benchmarks.md); the defaults' ~1.5 h estimate.
    package = cat.build("flash-attn")
    assert package is not None
    minutes = prebuilt.compile_minutes(package, archs=archs, jobs=jobs, nvcc_threads=threads, cpus=cpus)
    assert minutes == pytest.approx(expected, abs=0.1)
