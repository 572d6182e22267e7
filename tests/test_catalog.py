from __future__ import annotations

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from uvx_llm import catalog


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
