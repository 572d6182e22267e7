from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from helpers import NO_GPU, applied, gpu_machine, make, proj, simple

from uvx_llm import actions, routing
from uvx_llm.errors import ExitCode, LlmSyncError
from uvx_llm.redact import redact

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog


def backend_reason(made: actions.Plan) -> str:
    return next(d.reason for d in made.decisions if d.topic == "backend")


def test_h200_on_driver_580_gets_the_newest_build_it_runs(cat: Catalog) -> None:
    made = make(simple("torch"), cat)
    assert made.backend == "cu130"
    reason = backend_reason(made)
    assert "driver 580.159.04 runs CUDA ≤ 13.0" in reason
    assert "sm_90" in reason
    assert "not cu132: needs CUDA 13.2" in reason


def test_driver_limited_to_cuda_124(cat: Catalog) -> None:
    made = make(simple("torch"), cat, gpu_machine((12, 4), (8, 0), driver="550.54.14"))
    assert made.backend == "cu124"


def test_minor_version_compatibility_only_when_nothing_else_fits(cat: Catalog) -> None:
    # Driver 550 runs CUDA 12.4 strictly; a project on torch 2.8 has no cu124 build,
    # but 12.x builds run on any driver >= 525.60.13 through minor-version compatibility.
    made = make(simple("torch==2.8.0"), cat, gpu_machine((12, 4), (8, 0), driver="550.54.14"))
    assert made.backend == "cu129"
    assert "minor-version compatibility" in backend_reason(made)


def test_without_the_driver_version_no_compatibility_guess(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError, match="no PyTorch CUDA build fits"):
        make(simple("torch==2.8.0"), cat, gpu_machine((12, 4), (8, 0)))


def test_vllm_pin_decides_the_torch_release(cat: Catalog) -> None:
    made = make(simple("vllm==0.10.2"), cat)
    assert made.backend == "cu129"  # vllm 0.10.2 pins torch 2.8.0: cu126/cu128/cu129
    assert "torch==2.8.0 (pinned by vllm==0.10.2)" in backend_reason(made)


def test_vllm_range_allows_several_releases(cat: Catalog) -> None:
    made = make(simple("vllm>=0.9,<0.11"), cat, gpu_machine((12, 8), (9, 0), driver="570.26"))
    assert made.backend == "cu128"


def test_vllm_outside_the_catalog_is_a_warning(cat: Catalog) -> None:
    made = make(simple("vllm<0.5"), cat)  # older than the catalog: its pin is ignored
    assert any("outside the catalog" in w for w in made.warnings)


def test_a_vllm_newer_than_the_catalog_unread_is_assumed_to_pin_the_newest_torch(cat: Catalog) -> None:
    made = make(simple("vllm>=9"), cat)  # no METADATA read (the pure planner reads nothing)
    (warning,) = [w for w in made.warnings if "newer than the catalog" in w]
    assert "its torch pin could not be read (not read from the index)" in warning
    assert "assumed it pins torch ≥ 2.14.0" in warning
    assert made.backend == "cu130"


def test_pascal_on_driver_580_needs_cu126_and_says_so(cat: Catalog) -> None:
    p100 = gpu_machine((13, 0), (6, 0), driver="580.159.04")
    assert make(simple("torch"), cat, p100).backend == "cu126"
    with pytest.raises(LlmSyncError) as caught:
        make(simple("torch>=2.15"), cat, p100)
    error = caught.value
    assert error.exit_code == ExitCode.USAGE
    assert "sm_60 not in its arch list" in error.why
    assert "cu126 with torch 2.6–2.14" in error.fix


def test_blackwell_on_an_old_driver_uses_compatibility_or_names_the_driver(cat: Catalog) -> None:
    b200 = gpu_machine((12, 6), (10, 0), driver="560.28.03")
    made = make(simple("torch"), cat, b200)
    assert made.backend == "cu129"
    assert "minor-version compatibility" in backend_reason(made)
    unknown_driver = gpu_machine((12, 6), (10, 0))  # --cuda 12.6 --arch 10.0: no driver version
    with pytest.raises(LlmSyncError) as caught:
        make(simple("torch"), cat, unknown_driver)
    assert "sm_100 not in its arch list" in caught.value.why
    assert "update the NVIDIA driver to ≥ 570.26 for cu128" in caught.value.fix


def test_every_gpu_must_be_covered(cat: Catalog) -> None:
    mixed = gpu_machine((13, 0), (7, 0), (9, 0), driver="580.159.04")  # V100 + H200
    made = make(simple("torch"), cat, mixed)
    assert made.backend == "cu129"  # the newest with sm_70: torch 2.8's cu129
    assert "sm_70 sm_90" in backend_reason(made)


def test_ada_runs_ampere_code(cat: Catalog) -> None:
    ada = gpu_machine((12, 8), (8, 9), driver="570.26")
    assert make(simple("torch"), cat, ada).backend == "cu128"


def test_no_gpu_means_cpu(cat: Catalog) -> None:
    made = make(simple("torch"), cat, NO_GPU)
    assert made.backend == "cpu"
    assert actions.SetSource("torch", {"index": "pytorch-cpu"}) in made.actions


def test_macos_means_cpu(cat: Catalog) -> None:
    mac = dataclasses.replace(NO_GPU, system="macos")
    assert "macOS" in backend_reason(make(simple("torch"), cat, mac))


def test_arch_unknown_picks_by_driver_alone(cat: Catalog) -> None:
    only_cuda = dataclasses.replace(gpu_machine((12, 8)), archs_known=False)
    made = make(simple("torch"), cat, only_cuda)
    assert made.backend == "cu128"
    assert "not checked" in backend_reason(made)


def test_nothing_to_route_without_torch(cat: Catalog) -> None:
    made = make(simple("requests"), cat)
    assert made.backend is None
    assert made.actions == ()


def test_consumer_without_torch_gets_torch_as_a_direct_dependency(cat: Catalog) -> None:
    made = make(simple("flash-attn", "requests"), cat)
    assert actions.AddRequirement("dependencies", None, "torch") in made.actions
    after = applied(simple("flash-attn", "requests"), made)
    assert "torch" in after.dependency_lists()[0].names()


def test_torch_goes_into_the_extra_that_needs_it(cat: Catalog) -> None:
    project = proj(
        '[project]\nname = "d"\nversion = "0"\ndependencies = []\n[project.optional-dependencies]\nserve = ["vllm"]\n[dependency-groups]\ntrain = ["deepspeed"]\n'
    )
    made = make(project, cat)
    assert actions.AddRequirement("extra", "serve", "torch") in made.actions
    assert actions.AddRequirement("group", "train", "torch") in made.actions


def test_recorded_backend_is_kept_on_a_machine_that_runs_it(cat: Catalog) -> None:
    first = applied(
        simple("torch"), make(simple("torch"), cat, gpu_machine((12, 8), (8, 0), driver="570.26"))
    )
    assert first.config["backend"] == "cu128"
    again = make(first, cat)  # an H200 with driver 580 would pick cu130 on a fresh project
    assert again.backend == "cu128"
    assert again.actions == ()


def test_recorded_backend_that_cannot_run_is_an_error_naming_both(cat: Catalog) -> None:
    recorded = applied(simple("torch"), make(simple("torch"), cat))  # cu130
    old_driver = gpu_machine((12, 4), (8, 0), driver="550.54.14")
    with pytest.raises(LlmSyncError) as caught:
        make(recorded, cat, old_driver)
    text = caught.value.render()
    assert "cu130" in text
    assert "llm-sync --backend cu124" in text


def test_retarget_with_backend_rewrites_routing_and_drops_the_old_index(cat: Catalog) -> None:
    recorded = applied(simple("torch"), make(simple("torch"), cat))
    made = make(recorded, cat, gpu_machine((12, 4), (8, 0), driver="550.54.14"), backend="cu124")
    after = applied(recorded, made)
    assert after.config["backend"] == "cu124"
    names = [i["name"] for i in after.uv_indexes]
    assert names == ["pytorch-cpu", "pytorch-cu124"]
    assert after.uv_sources["torch"][0]["index"] == "pytorch-cu124"


def test_explicit_backend_that_cannot_run_here_is_a_warning(cat: Catalog) -> None:
    made = make(simple("torch"), cat, gpu_machine((12, 4), (8, 0), driver="550.54.14"), backend="cu130")
    assert made.backend == "cu130"
    assert any("will not run on this machine" in w for w in made.warnings)


def test_check_mode_without_a_backend_reports_differences(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError) as caught:
        make(simple("torch"), cat, None)
    assert caught.value.exit_code == ExitCode.DIFFERENCES


def test_check_mode_uses_the_recorded_backend(cat: Catalog) -> None:
    recorded = applied(simple("torch"), make(simple("torch"), cat))
    assert make(recorded, cat, None).actions == ()
    # A teammate adds vllm; check (no machine) brings the file back in line.
    grown = proj(recorded.text.replace('"torch",', '"torch",\n    "torchvision",'))
    made = make(grown, cat, None)
    assert [type(a).__name__ for a in made.actions] == ["SetSource"]


def test_hand_written_routing_is_kept_and_reported(cat: Catalog) -> None:
    project = simple(
        "torch",
        extra='[tool.uv.sources]\ntorch = { index = "mine" }\n[[tool.uv.index]]\nname = "mine"\nurl = "https://example.invalid/simple"\nexplicit = true\n',
    )
    made = make(project, cat)
    assert not any(isinstance(a, actions.SetSource) for a in made.actions)
    assert any("kept the hand-written [tool.uv.sources] for torch" in w for w in made.warnings)
    forced = make(project, cat, force=True)
    assert actions.SetSource("torch", routing.desired_source("cu130")) in forced.actions


def test_unknown_torch_constraint_is_a_clear_error(cat: Catalog) -> None:
    with pytest.raises(LlmSyncError, match="no torch release"):
        make(simple("torch==1.13.1"), cat)


def test_redaction_hides_credentials() -> None:
    assert redact("https://user:secret@mirror.example/whl") == "https://***@mirror.example/whl"


def test_a_cuda_11_torch_never_pairs_with_a_cuda_12_vllm(cat: Catalog) -> None:
    """vllm 0.10.1.1 pins torch 2.7.1; its PyPI wheels link libcudart.so.12. On a CUDA 12.4
    driver cu118 is the only torch 2.7 build it runs natively: minor-version compatibility
    it is, and the decision says why."""
    made = make(simple("vllm==0.10.1.1", "torch"), cat, gpu_machine((12, 4), (8, 0), driver="550.54.14"))
    assert made.backend in {"cu126", "cu128"}
    reason = backend_reason(made)
    assert "minor-version compatibility" in reason
    assert "not cu118: vllm's PyPI wheels for torch 2.7 are built for CUDA 12" in reason


def test_vllm_keeps_the_torch_bound_to_its_cuda_major(cat: Catalog) -> None:
    """An unpinned vllm on a CUDA 12.8 driver: cu128 torch 2.11 would need vllm >= 0.20, whose
    wheels are CUDA 13 builds. The bound stops at torch 2.10."""
    made = make(simple("vllm"), cat, gpu_machine((12, 8), (9, 0), driver="570.26"))
    assert made.backend == "cu128"
    bound = next(
        a for a in made.actions if isinstance(a, actions.SetBound) and a.requirement.startswith("torch")
    )
    assert bound.requirement == "torch>=2.7,<2.11"
    on_cuda_13 = make(simple("vllm"), cat, gpu_machine((13, 0), (10, 0), driver="580.65.06"))
    bound = next(
        a for a in on_cuda_13.actions if isinstance(a, actions.SetBound) and a.requirement.startswith("torch")
    )
    assert (on_cuda_13.backend, bound.requirement) == ("cu130", "torch>=2.11,<2.15")


def test_vllm_built_for_cuda_12_on_a_cuda_13_machine(cat: Catalog) -> None:
    made = make(simple("vllm==0.11.1", "torch"), cat, gpu_machine((13, 0), (10, 0), driver="580.65.06"))
    assert made.backend == "cu128"  # torch 2.9.0 has cu130 too, but vllm 0.11.1 is a CUDA 12.8 build
    assert "not cu130: vllm's PyPI wheels for torch 2.9 are built for CUDA 12" in backend_reason(made)
