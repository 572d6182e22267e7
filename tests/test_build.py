from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest
from helpers import H200, applied, gpu_machine, make, proj, simple

from uvx_llm import actions, build, plan
from uvx_llm.errors import LlmSyncError

if TYPE_CHECKING:
    from uvx_llm.machine import Machine
from uvx_llm.resources import Resources

if TYPE_CHECKING:
    from uvx_llm.catalog import Catalog

GIB = 2**30
H200_HOST = Resources(
    cpus=16, cpu_reason="16 CPUs in affinity", memory_bytes=120 * GIB, memory_reason="120 GiB free"
)
CONTAINER = Resources(
    cpus=4,
    cpu_reason="4 CPUs allowed by cgroup v2 cpu.max",
    memory_bytes=16 * GIB,
    memory_reason="16 GiB free",
)


def env_of(settings: tuple[actions.EnvSetting, ...]) -> dict[str, str]:
    return {s.name: s.value for s in settings}


def tune(
    cat: Catalog,
    host: Resources,
    *,
    machine: Machine = H200,
    env: dict[str, str] | None = None,
    all_archs: bool = False,
) -> dict[str, str]:
    flash = cat.build("flash-attn")
    assert flash is not None
    archs = build.team_archs(project=simple("flash-attn"), machine=machine, all_archs=all_archs)
    return env_of(build.tuning(host=host, packages=[flash], env=env or {}, archs=archs))


def test_h200_builds_one_architecture_with_every_core(cat: Catalog) -> None:
    assert tune(cat, H200_HOST) == {
        "TORCH_CUDA_ARCH_LIST": "9.0",
        "FLASH_ATTN_CUDA_ARCHS": "90",
        "NVCC_THREADS": "1",
        "MAX_JOBS": "16",
        "CMAKE_BUILD_PARALLEL_LEVEL": "16",
        "UV_CONCURRENT_BUILDS": "1",
        "RUST_LOG": "uv_build_frontend=debug",
    }


def test_container_memory_limit_caps_the_jobs(cat: Catalog) -> None:
    tuned = tune(cat, CONTAINER)
    assert tuned["MAX_JOBS"] == "3"  # 16 GiB / 5 GiB per job, below the 4 CPUs


def test_two_gpu_generations(cat: Catalog) -> None:
    tuned = tune(cat, H200_HOST, machine=gpu_machine((13, 0), (8, 0), (9, 0), driver="580.159.04"))
    assert tuned["FLASH_ATTN_CUDA_ARCHS"] == "80;90"
    assert tuned["TORCH_CUDA_ARCH_LIST"] == "8.0;9.0"
    assert tuned["NVCC_THREADS"] == "2"
    assert tuned["MAX_JOBS"] == "8"


def test_all_archs_keeps_package_defaults(cat: Catalog) -> None:
    tuned = tune(cat, H200_HOST, all_archs=True)
    assert "FLASH_ATTN_CUDA_ARCHS" not in tuned
    assert "TORCH_CUDA_ARCH_LIST" not in tuned
    assert tuned["NVCC_THREADS"] == "4"
    assert tuned["MAX_JOBS"] == "4"  # 16 CPUs / 4 threads; 120 GiB / 20 GiB per job = 6


def test_values_the_user_set_win(cat: Catalog) -> None:
    flash = cat.build("flash-attn")
    assert flash is not None
    settings = build.tuning(
        host=H200_HOST, packages=[flash], env={"MAX_JOBS": "2", "NVCC_THREADS": "2"}, archs=((9, 0),)
    )
    by_name = {s.name: s for s in settings}
    assert by_name["MAX_JOBS"].value == "2"
    assert by_name["MAX_JOBS"].from_user
    assert by_name["CMAKE_BUILD_PARALLEL_LEVEL"].value == "2"
    assert by_name["NVCC_THREADS"].from_user
    made = actions.Plan(None, (), (), (), None, settings)
    assert "MAX_JOBS" not in made.uv_environment()  # inherited as the user set it
    assert made.uv_environment()["FLASH_ATTN_CUDA_ARCHS"] == "90"


def test_unknown_memory_uses_cpus_alone(cat: Catalog) -> None:
    tuned = tune(cat, Resources(cpus=8, cpu_reason="8", memory_bytes=None, memory_reason="memory unknown"))
    assert tuned["MAX_JOBS"] == "8"


def test_plan_writes_build_settings_and_tunes(cat: Catalog) -> None:
    made = plan.make(
        machine=H200,
        project=simple("flash-attn"),
        catalog=cat,
        request=actions.Request(prefer="newest"),
        host=H200_HOST,
    )
    assert (
        actions.AddBuildDependencies("flash-attn", (build.TORCH_AT_RUNTIME, "ninja", "packaging", "psutil"))
        in made.actions
    )
    assert made.uv_environment()["MAX_JOBS"] == "16"
    assert str(made.uv_min_version) == "0.10.0"


def test_check_mode_writes_build_settings_without_tuning(cat: Catalog) -> None:
    recorded = simple("flash-attn", "torch", extra='[tool.llm-sync]\nbackend = "cu130"\n')
    made = make(recorded, cat, None)
    assert any(isinstance(a, actions.AddBuildDependencies) for a in made.actions)
    assert made.env == ()


def test_existing_build_settings_are_completed_not_replaced(cat: Catalog) -> None:
    project = simple(
        "flash-attn",
        extra='[tool.uv.extra-build-dependencies]\nflash-attn = [{ requirement = "torch", match-runtime = true }, "ninja>=1.11"]\n',
    )
    made = make(project, cat)
    assert actions.AddBuildDependencies("flash-attn", ("packaging", "psutil")) in made.actions


def test_prebuilt_from_an_index_needs_no_build_settings(cat: Catalog) -> None:
    project = simple(
        "flash-attn",
        "torch",
        extra='[tool.uv.sources]\nflash-attn = { index = "wheelhouse" }\n\n'
        '[[tool.uv.index]]\nname = "wheelhouse"\nurl = "https://wheels.example/simple"\nexplicit = true\n',
    )
    made = make(project, cat)
    assert not any(isinstance(a, actions.AddBuildDependencies) for a in made.actions)
    assert any(d.choice == "none for flash-attn" for d in made.decisions)


def test_skip_cuda_build_is_warned_about(cat: Catalog) -> None:
    project = simple(
        "flash-attn",
        extra='[tool.uv.extra-build-variables]\nflash-attn = { FLASH_ATTENTION_SKIP_CUDA_BUILD = "TRUE" }\n',
    )
    made = make(project, cat, None, backend="cu128")
    assert any("WITHOUT kernels" in w for w in made.warnings)


def test_gpu_below_flash_attn_minimum_is_refused_before_building(cat: Catalog) -> None:
    v100 = gpu_machine((12, 8), (7, 0), driver="570.26")
    with pytest.raises(LlmSyncError) as caught:
        make(simple("flash-attn"), cat, v100)
    assert "compute capability ≥ 8.0" in caught.value.why
    assert "is 7.0" in caught.value.why


def test_cpu_backend_with_a_cuda_extension_is_warned(cat: Catalog) -> None:
    made = make(
        simple("flash-attn"), cat, dataclasses.replace(H200, gpus=(), cuda_max=None, driver_version=None)
    )
    assert made.backend == "cpu"
    assert any("CUDA extensions are declared" in w for w in made.warnings)


def test_project_without_extensions_gets_no_tuning(cat: Catalog) -> None:
    made = plan.make(
        machine=H200,
        project=proj('[project]\nname = "x"\nversion = "0"\ndependencies = ["torch"]\n'),
        catalog=cat,
        request=actions.Request(prefer="newest"),
        host=H200_HOST,
    )
    assert made.env == ()


def test_uv_no_config_is_warned_about(cat: Catalog) -> None:
    request = actions.Request(environment={"UV_NO_CONFIG": "1"}, prefer="newest")
    made = plan.make(machine=H200, project=simple("flash-attn"), catalog=cat, request=request, host=H200_HOST)
    assert any("UV_NO_CONFIG" in w for w in made.warnings)


def test_a_rust_log_of_the_users_own_is_extended(cat: Catalog) -> None:
    assert tune(cat, H200_HOST, env={"RUST_LOG": "uv=info"})["RUST_LOG"] == "uv=info,uv_build_frontend=debug"


def test_linux_only_extension_gets_a_platform_marker(cat: Catalog) -> None:
    project = proj(
        '[project]\nname = "x"\nversion = "0"\ndependencies = [\n    "flash-attn>=2.8",  # attention\n]\n'
        "[dependency-groups]\ngpu = [\"flash-attn; python_version >= '3.10'\"]\nmac = [\"flash-attn; sys_platform == 'linux'\"]\n"
    )
    made = make(project, cat)
    marked = [a for a in made.actions if isinstance(a, actions.SetRequirement)]
    assert [(a.kind, a.list_name, a.new) for a in marked] == [
        ("dependencies", None, "flash-attn>=2.8 ; sys_platform == 'linux'"),
        ("group", "gpu", "flash-attn ; (python_version >= \"3.10\") and sys_platform == 'linux'"),
    ]
    text = applied(project, made).text
    assert "\"flash-attn>=2.8 ; sys_platform == 'linux'\",  # attention" in text


def test_the_team_architectures_are_recorded_widened_and_never_narrowed(cat: Catalog) -> None:
    recorded = simple("flash-attn", extra='[tool.llm-sync]\ncuda-archs = "9.0"\n')
    a100 = gpu_machine((12, 8), (8, 0))
    assert build.team_archs(project=recorded, machine=a100, all_archs=False) == ((8, 0), (9, 0))
    assert build.team_archs(project=recorded, machine=None, all_archs=False) == ((9, 0),)
    assert build.team_archs(project=recorded, machine=a100, all_archs=True) == ((9, 0),)
    made = make(recorded, cat, a100)
    assert actions.SetConfig("cuda-archs", "8.0;9.0") in made.actions
    assert (
        actions.SetBuildVariables(
            "flash-attn", (("TORCH_CUDA_ARCH_LIST", "8.0;9.0"), ("FLASH_ATTN_CUDA_ARCHS", "80;90"))
        )
        in made.actions
    )
    # A CPU-only machine (a laptop, CI) keeps the recorded set and writes nothing new.
    after = applied(recorded, made)
    assert make(after, cat, a100).actions == ()
    assert make(after, cat, None).actions == ()


def test_check_reports_build_variables_that_disagree_with_the_recorded_architectures(cat: Catalog) -> None:
    hand_edited = simple(
        "flash-attn",
        extra=(
            '[tool.llm-sync]\nbackend = "cu128"\ncuda-archs = "8.0;9.0"\n\n'
            '[tool.uv.extra-build-variables]\nflash-attn = { FLASH_ATTN_CUDA_ARCHS = "90", MY_FLAG = "1" }\n'
        ),
    )
    made = make(hand_edited, cat, None)
    variables = [a for a in made.actions if isinstance(a, actions.SetBuildVariables)]
    assert variables == [
        actions.SetBuildVariables(
            "flash-attn", (("TORCH_CUDA_ARCH_LIST", "8.0;9.0"), ("FLASH_ATTN_CUDA_ARCHS", "80;90"))
        )
    ]
    text = applied(hand_edited, made).text
    assert 'MY_FLAG = "1"' in text  # the user's own build variable stays
