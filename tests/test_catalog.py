from __future__ import annotations

from pathlib import Path

import pytest
import tomlkit
from helpers import gpu_machine, make, simple
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from uvx_llm import catalog
from uvx_llm.errors import LlmSyncError


def test_every_torch_row_cites_a_source_and_known_variants(cat: catalog.Catalog) -> None:
    known = set(cat.variants)
    for release in cat.torch:
        assert release.source
        assert release.versions
        assert {name for name, _ in release.variants} <= known
        assert release.unconfirmed <= {name for name, _ in release.variants}


def test_variants_are_ordered_newest_cuda_first(cat: catalog.Catalog) -> None:
    cudas = [cat.cuda_of(v) for v in cat.variants]
    assert cudas == sorted(cudas, reverse=True)
    assert cat.backends[0] == "cpu"


@pytest.mark.parametrize(
    ("driver", "cuda"),
    [
        ("580.159.04", (13, 0)),
        ("550.54.14", (12, 4)),
        ("570.26", (12, 8)),
        ("560.35.03", (12, 6)),
        ("510.0", None),
    ],
)
def test_max_cuda_for_driver_follows_the_release_notes(
    cat: catalog.Catalog, driver: str, cuda: tuple[int, int] | None
) -> None:
    assert cat.max_cuda_for_driver(Version(driver)) == cuda


def test_cuda13_builds_have_no_arch_below_sm75(cat: catalog.Catalog) -> None:
    for release in cat.releases_with("cu130"):
        assert min(release.archs("cu130") or ()) == (7, 5)


@pytest.mark.parametrize(
    ("text", "pair"),
    [
        ("9.0", (9, 0)),
        ("sm_90", (9, 0)),
        ("90", (9, 0)),
        ("12.0", (12, 0)),
        ("sm_120", (12, 0)),
        ("8.6", (8, 6)),
    ],
)
def test_parse_pair_accepts_the_usual_spellings(text: str, pair: tuple[int, int]) -> None:
    assert catalog.parse_pair(text) == pair


@pytest.mark.parametrize("text", ["", "x", "9", "sm_"])
def test_parse_pair_rejects_nonsense(text: str) -> None:
    with pytest.raises(ValueError, match=r"."):
        catalog.parse_pair(text)


def test_binary_compatibility_is_same_major_lower_minor() -> None:
    assert catalog.runs_on((8, 6), (8, 9))
    assert not catalog.runs_on((8, 9), (8, 6))
    assert not catalog.runs_on((9, 0), (10, 0))


def test_release_allows_patch_versions_newer_than_the_catalog(cat: catalog.Catalog) -> None:
    release = next(r for r in cat.torch if r.release == "2.9")
    assert release.allows(SpecifierSet("==2.9.7"))
    assert release.allows(SpecifierSet(">=2.9,<2.10"))
    assert not release.allows(SpecifierSet(">=2.10"))


# --- validation on load ---------------------------------------------------------------------


def _shipped() -> str:
    return Path(catalog.__file__).with_name("catalog.toml").read_text(encoding="utf-8")


def _error(text: str) -> str:
    with pytest.raises(LlmSyncError) as caught:
        catalog.from_text(text)
    return caught.value.what


def test_a_missing_key_names_the_row_and_the_key() -> None:
    text = _shipped().replace('release = "2.6"\nsource', 'release = "2.6"\nsourc', 1)
    assert _error(text) == (
        "the compatibility catalog is malformed: [[torch]] #3 (release = '2.6'): missing key 'source'"
    )


def test_a_malformed_version_names_the_row_and_the_value() -> None:
    text = _shipped().replace('torch = "2.9.0"', 'torch = "two point nine"', 1)
    what = _error(text)
    assert "[[vllm]] #8 (vllm = '>=0.11.1,<0.12.0')" in what
    assert "torch = 'two point nine'" in what


def test_a_value_of_the_wrong_type_is_named() -> None:
    text = _shipped().replace('cu126 = ["5.0", "6.0", "7.0", "7.5", "8.0", "8.6", "9.0"]', 'cu126 = "9.0"', 1)
    assert "[[torch]] #3 (release = '2.6').variants: cu126 = '9.0' is not a list" in _error(text)


def test_an_arch_that_is_not_a_pair_is_named() -> None:
    text = _shipped().replace('cu132 = ["7.5",', 'cu132 = ["sm_x",', 1)
    assert "cu132: 'sm_x'" in _error(text)


def test_a_torch_row_without_its_metadata_row_says_to_refresh() -> None:
    text = _shipped().replace('[[torch-pypi]]\nrelease = "2.8"', '[[torch-pypi]]\nrelease = "2.8-gone"', 1)
    assert "no [[torch-pypi]] row for torch 2.8: run `python -m uvx_llm.refresh --write`" in _error(text)


def test_a_variant_the_catalog_does_not_define_is_named() -> None:
    text = _shipped().replace('cu129 = ["7.0",', 'cu199 = ["7.0",', 1)
    assert "[[torch]] #5 (release = '2.8'): variants ['cu199'] are not in [variants]" in _error(text)


def test_the_guard_abi_is_checked() -> None:
    assert "abi = 'new'" in _error(_shipped().replace('abi = "old"', 'abi = "new"', 1))


def test_the_schema_is_checked() -> None:
    assert _error(_shipped().replace("schema = 1", "schema = 2", 1)) == (
        "the compatibility catalog has schema 2; this llm-sync reads schema 1"
    )
    assert "missing key 'schema'" in _error(_shipped().replace("schema = 1\n", "", 1))


def test_not_toml_is_a_clear_error() -> None:
    assert "is not valid TOML" in _error(_shipped() + "\n[[torch]\n")


def test_every_fact_has_a_source_and_a_date() -> None:
    data = tomlkit.parse(_shipped()).unwrap()
    for table in ("torch", "guards", "known-bad", "prebuilt"):
        for row in data[table]:
            assert row["source"]
            assert row["checked"] >= "2026-11-21"
    for table in ("torch-pypi", "vllm"):  # generated: one date for the whole part
        assert all(row["source"] for row in data[table])
    assert data["generated"]["checked"] >= "2026-11-22"


# --- the examples ---------------------------------------------------------------------


def test_torch_210_cu128_includes_volta(cat: catalog.Catalog) -> None:
    v100 = gpu_machine((13, 0), (7, 0), driver="580.159.04")
    made = make(simple("torch==2.10.0"), cat, v100)
    assert made.backend == "cu128"
    release = next(r for r in cat.torch if r.release == "2.10")
    assert (7, 0) in (release.archs("cu128") or ())
    assert (7, 0) not in (next(r for r in cat.torch if r.release == "2.11").archs("cu128") or ())


def test_vllm_0111_pins_torch_29_and_is_routed_with_the_reason(cat: catalog.Catalog) -> None:
    cuda_124 = gpu_machine((12, 4), (8, 0), driver="550.54.14")
    made = make(simple("vllm==0.11.1"), cat, cuda_124)
    assert not any("outside the catalog" in w for w in made.warnings)
    # torch 2.9 has no CUDA <= 12.4 build: a CUDA 12 build runs through minor-version
    # compatibility (driver >= 525.60.13), and the reason says so.
    assert made.backend == "cu128"
    decision = next(d for d in made.decisions if d.choice == "cu128")
    assert "minor-version compatibility" in decision.reason
    assert "torch==2.9.0 (pinned by vllm==0.11.1)" in " ".join(d.reason for d in made.decisions)


def test_new_patch_releases_are_known(cat: catalog.Catalog) -> None:
    versions = {str(v) for r in cat.torch for v in r.versions}
    assert {"2.12.1", "2.14.1"} <= versions
    assert next(r for r in cat.torch if r.release == "2.11").pypi_cuda == (13, 0)


def test_flash_attn_prebuilt_matrix_knows_the_newest_releases(cat: catalog.Catalog) -> None:
    def rows(version: str) -> list[catalog.Prebuilt]:
        return [p for p in cat.prebuilt if p.package == "flash-attn" and p.versions.contains(version)]

    [post1] = rows("2.8.3.post1")
    assert (2, 8) in post1.torch
    assert (2, 9) not in post1.torch  # no release has wheels for torch >= 2.9
    [post2] = rows("2.8.3.post2")
    assert post2.unconfirmed
    assert not post2.torch
    [old] = rows("2.7.4.post1")
    assert (2, 6) in old.torch
    assert old.cuda == ("12",)
