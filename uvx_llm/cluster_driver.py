"""The script `doctor --ray` and `sync --ray`'s survey run (cluster.py): in the project's
interpreter (which has the cluster's ray), standard library and ray only, never imported by
llm-sync.

It takes one JSON argument (the cluster's address, the probe's text, the nvidia-smi command,
the per-node timeout, the LLM_SYNC_* variables a node may declare its machine with,
resources.py's text and the project files to digest) and prints one JSON line: the driver's
ray version and, for each alive node, what its task found there (nvidia-smi's output, the
declared machine, the CPUs and memory, the project files' SHA-256, the interpreter and the
probe's answer), or that it did not answer in time. One task per node, pinned with
NodeAffinitySchedulingStrategy (soft=False), no retries, ``num_cpus=0`` and no GPU.
"""

# Runs in the project's interpreter on this machine: standard library and ray only, one JSON line out.
DRIVER = r"""
import json, sys
args = json.loads(sys.argv[1])
try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as error:
    print(json.dumps({"error": "no-ray", "detail": str(error)}))
    sys.exit(0)

def load(name, text):  # one of llm-sync's standard-library modules, from its text
    import sys, types
    module = types.ModuleType(name)
    sys.modules[name] = module
    exec(text, module.__dict__)
    return module

def look(project_root, probe, smi, timeout, targets, resources, files, sysfs):
    import hashlib, os, subprocess, sys, tempfile
    from pathlib import Path
    import ray
    out = {"files": {}}
    try:  # the files llm-sync reads for AMD GPUs there (no nvidia-smi on an AMD node)
        out["rocm_path"] = os.environ.get("ROCM_PATH")
        out["amd"] = load("llm_sync_sysfs_copy", sysfs).collect(Path("/"), out["rocm_path"])
    except Exception as error:
        out["amd"] = {}
        out["amd_error"] = f"{type(error).__name__}: {error}"
    for relative in files:  # the project's own files there: the same as here?
        try:
            with open(os.path.join(project_root, relative), "rb") as handle:
                out["files"][relative] = hashlib.sha256(handle.read()).hexdigest()
        except FileNotFoundError:
            out["files"][relative] = None
        except OSError as error:
            out["files"][relative] = f"unreadable: {error}"
    try:  # the CPUs and memory a build can use there: llm-sync's resources.py, standard library only
        found = load("llm_sync_resources", resources).detect()
        out["resources"] = {key: getattr(found, key) for key in ("cpus", "cpu_reason", "memory_bytes", "memory_reason")}
    except Exception as error:
        out["resources"] = {"error": f"{type(error).__name__}: {error}"}
    chosen = os.environ.get("UV_PROJECT_ENVIRONMENT")
    environment = os.path.join(project_root, chosen) if chosen else os.path.join(project_root, ".venv")
    python = os.path.join(environment, "bin", "python")
    out["interpreter"] = python
    out["target"] = {key: os.environ[key] for key in targets if os.environ.get(key)}
    try:
        done = subprocess.run(smi, capture_output=True, text=True, timeout=20)
        out["smi"] = {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:]}
    except (OSError, subprocess.SubprocessError) as error:
        out["smi"] = {"rc": -1, "stdout": "", "stderr": str(error)}
    if not probe or not os.path.exists(python):  # no probe asked (sync --ray), or no environment
        out["probe"] = None
        return out
    env = dict(os.environ)
    try:
        assigned = ray.get_runtime_context().get_accelerator_ids().get("GPU")
    except Exception:
        assigned = None
    if not assigned and env.get("CUDA_VISIBLE_DEVICES") == "":
        # Ray's own doing (older Ray, or RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO): it hides every GPU
        # from a task that asks for none, and this one asks for none so as never to wait for a
        # busy node. The node's jobs get their GPUs from Ray: the probe looks as the node does.
        del env["CUDA_VISIBLE_DEVICES"]
        out["ray_hid_gpus"] = True
    with tempfile.TemporaryDirectory() as neutral:
        try:
            done = subprocess.run(
                [python, "-I", "-c", probe], capture_output=True, text=True, timeout=timeout, cwd=neutral, env=env
            )
            out["probe"] = {"rc": done.returncode, "stdout": done.stdout, "stderr": done.stderr[-2000:]}
        except subprocess.TimeoutExpired:
            out["probe"] = {"rc": -1, "timed_out": True, "stdout": "", "stderr": ""}
        except OSError as error:
            out["probe"] = {"rc": -1, "stdout": "", "stderr": str(error)}
    return out

try:
    ray.init(address=args["address"], logging_level="ERROR", log_to_driver=False)
except Exception as error:
    print(json.dumps({"error": "connect", "detail": f"{type(error).__name__}: {error}"}))
    sys.exit(0)
try:
    alive = [node for node in ray.nodes() if node.get("Alive")]
    task = ray.remote(look)
    asked = {}
    for node in alive:
        strategy = NodeAffinitySchedulingStrategy(node_id=node["NodeID"], soft=False)
        ref = task.options(num_cpus=0, max_retries=0, scheduling_strategy=strategy).remote(
            args["project_root"], args["probe"], args["smi"], args["timeout"], args["targets"], args["resources"],
            args["files"], args["sysfs"],
        )
        asked[ref] = node
    ready, pending = (
        ray.wait(list(asked), num_returns=len(asked), timeout=args["timeout"] + 30) if asked else ([], [])
    )
    answers = []
    for ref in list(ready) + list(pending):
        node = asked[ref]
        entry = {
            "node_id": node["NodeID"],
            "name": node.get("NodeManagerHostname") or node.get("NodeManagerAddress") or node["NodeID"][:12],
            "address": node.get("NodeManagerAddress"),
        }
        if ref in pending:
            entry["timed_out"] = True
            try:
                ray.cancel(ref, force=True)
            except Exception:
                pass
        else:
            try:
                entry.update(ray.get(ref))
            except Exception as error:
                entry["error"] = f"{type(error).__name__}: {error}"[:2000]
        answers.append(entry)
    print(json.dumps({"ray": ray.__version__, "nodes": answers}))
finally:
    ray.shutdown()
"""
