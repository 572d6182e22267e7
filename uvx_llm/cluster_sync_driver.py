"""The script `sync --ray` runs (cluster_sync.py): in an interpreter that has the cluster's ray,
standard library and ray only, never imported by llm-sync.

It takes one JSON argument (the cluster's address, the waves of nodes with each node's build
environment, the wheelhouse or none, wheelcopy.py's text) and writes one JSON event a line on
stderr, prefixed with ``llm-sync-event``: ``ray`` (its version), ``node`` (started, done,
failed, timed-out, task-failed, died, gone, cancelled), ``line`` (a build's progress line from
a node, through a Ray queue) and ``end``. One task per node, pinned with
NodeAffinitySchedulingStrategy (soft=False), no retries, ``num_cpus=0``. When no wheelhouse is
set, the first node's build goes to the later nodes as a Ray object (its second return value).
"""

# Runs in the chosen interpreter on this machine: standard library and ray only.
DRIVER = r"""
import json, re, signal, sys, time
args = json.loads(sys.argv[1])

def say(event, **fields):
    print("llm-sync-event " + json.dumps({"event": event, **fields}), file=sys.stderr, flush=True)

def on_term(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, on_term)

try:
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy
except ImportError as error:
    say("error", kind="no-ray", detail=str(error))
    sys.exit(0)

# uv's lines that make build progress (progress.py reads them on this machine)
PROGRESS = re.compile(r"^(\s*Building |\s*Built |DEBUG \[\d+/\d+\]|DEBUG Compiling objects|DEBUG Emitting ninja|error: Failed to build)")

def sync_node(project_root, uv_args, keys, house, wheelcopy, run_id, carried, env, name, lines, files):
    import importlib.util, os, shutil, signal, subprocess, sys, tempfile, time
    from pathlib import Path
    from collections import deque
    tools = {"__name__": "llm_sync_wheelcopy"}
    exec(wheelcopy, tools)
    try:
        written = tools["carry_files"](Path(project_root), files)
    except (OSError, ValueError) as error:
        return {"error": "differs", "detail": str(error)}, None
    found = shutil.which("uv")
    if found:
        uv = [found]
    elif importlib.util.find_spec("uv") is not None:
        uv = [sys.executable, "-m", "uv"]
    else:
        return {"error": "no-uv", "detail": f"no uv on PATH and no uv module in {sys.executable}"}, None
    cache_root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    log_path = os.path.join(cache_root, "llm-sync", "logs", "ray", f"{run_id}.log")
    os.makedirs(os.path.dirname(log_path), exist_ok=True)
    out = {"uv": " ".join(uv), "log": log_path, "restored": 0, "shared": [], "files": written}
    cache = None
    if keys:
        asked = subprocess.run([*uv, "cache", "dir"], capture_output=True, text=True, timeout=60)
        cache = Path(asked.stdout.strip()) if asked.returncode == 0 and asked.stdout.strip() else None
    if cache is not None:
        with tempfile.TemporaryDirectory(prefix="llm-sync-carried-") as unpacked:
            if carried:  # the first node's build, through Ray's object store
                tools["unpack"](carried, Path(unpacked))
            source = Path(house) if house else Path(unpacked)
            for key in keys:
                for entry in tools["entries_of"](source / key["build"]):
                    out["restored"] += tools["restore"](house_entry=entry, cache=cache)
    started = time.monotonic()
    with open(log_path, "w", encoding="utf-8") as log:
        child = subprocess.Popen(
            [*uv, "sync", "--project", project_root, *uv_args], env={**os.environ, **env},
            stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        reader = open(log_path, encoding="utf-8", errors="replace")
        pending = ""

        def forward():  # the build's progress lines, to the driver (a Ray queue), as they come
            nonlocal pending
            pending += reader.read()
            *complete, pending = pending.split("\n")
            wanted = [(name, line) for line in complete if PROGRESS.match(line)]
            if wanted and lines is not None:
                try:
                    lines.put_nowait_batch(wanted)
                except Exception:
                    pass

        try:
            while True:
                try:
                    out["rc"] = child.wait(timeout=1)
                    break
                except subprocess.TimeoutExpired:
                    forward()
            forward()
        except BaseException:  # cancelled (Ctrl-C on the driver) or the worker stopping: uv goes too
            for signum, grace in ((signal.SIGINT, 5), (signal.SIGTERM, 5), (signal.SIGKILL, 5)):
                try:
                    os.killpg(child.pid, signum)
                except ProcessLookupError:
                    break
                try:
                    child.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    pass
            raise
        finally:
            reader.close()
    out["seconds"] = round(time.monotonic() - started, 1)
    with open(log_path, encoding="utf-8", errors="replace") as log:
        out["tail"] = list(deque((line.rstrip("\n") for line in log), maxlen=30))
    if out["rc"] != 0 or cache is None or (not house and carried is not None):
        return out, None
    chosen = os.environ.get("UV_PROJECT_ENVIRONMENT")
    venv = Path(project_root) / chosen if chosen else Path(project_root) / ".venv"
    python = tools["python_of_venv"](venv)
    with tempfile.TemporaryDirectory(prefix="llm-sync-share-") as staging:
        folder = Path(house) if house else Path(staging)
        for key in keys if python else ():
            target = folder / key["build"] / f"py{python}"
            try:
                if tools["export"](cache=cache, target=target, name=key["name"], version=key["version"]):
                    out["shared"].append(str(target) if house else "Ray's object store")
            except OSError as error:
                out.setdefault("warnings", []).append(f"could not share {target}: {error}")
        packed = tools["pack"](folder) if out["shared"] and not house else None
    return out, packed

try:
    ray.init(address=args["address"], logging_level="ERROR", log_to_driver=False)
except Exception as error:
    say("error", kind="connect", detail=f"{type(error).__name__}: {error}")
    sys.exit(0)
say("ray", version=ray.__version__)
asked = {}
lines = None  # a Ray queue for the build's progress lines, when a node builds
if args["keys"]:
    try:
        from ray.util.queue import Queue
        lines = Queue(actor_options={"num_cpus": 0})
    except Exception:
        lines = None

def drain():
    if lines is None:
        return
    try:
        count = lines.qsize()
        for name, text in lines.get_nowait_batch(count) if count else []:
            say("line", name=name, text=text)
    except Exception:
        pass

try:
    alive = {node["NodeID"] for node in ray.nodes() if node.get("Alive")}
    task = ray.remote(sync_node)
    carried = None  # the first node's build for the others, when no wheelhouse is set
    for wave in args["waves"]:
        built = {}
        for node in wave:
            if node["node_id"] not in alive:
                say("node", name=node["name"], status="gone")
                continue
            strategy = NodeAffinitySchedulingStrategy(node_id=node["node_id"], soft=False)
            say("node", name=node["name"], status="started")
            ref, built[ref] = task.options(
                num_cpus=0, max_retries=0, num_returns=2, scheduling_strategy=strategy
            ).remote(
                args["project_root"], args["uv_args"], args["keys"], args["house"], args["wheelcopy"],
                args["run_id"], carried, node.get("env", {}), node["name"], lines, args["files"],
            )
            asked[ref] = node["name"]
        deadline = time.monotonic() + args["timeout"]
        failed = False
        while asked:
            left = deadline - time.monotonic()
            ready = ray.wait(list(asked), num_returns=1, timeout=min(left, 1.0))[0] if left > 0 else []
            drain()
            if not ready and time.monotonic() < deadline:
                continue
            if not ready:
                for ref, name in asked.items():
                    try:
                        ray.cancel(ref, force=True)
                    except Exception:
                        pass
                    say("node", name=name, status="timed-out")
                asked.clear()
                failed = True
                break
            for ref in ready:
                name = asked.pop(ref)
                try:
                    result = ray.get(ref)
                except Exception as error:
                    died = type(error).__name__ in ("NodeDiedError", "WorkerCrashedError")
                    status = "died" if died else "task-failed"
                    say("node", name=name, status=status, detail=f"{type(error).__name__}: {error}"[:2000])
                    failed = True
                    continue
                ok = result.get("rc") == 0 and "error" not in result
                failed = failed or not ok
                if ok and result.get("shared") and not args["house"]:
                    carried = built[ref]  # passed on as it is: Ray hands each later node the bytes
                say("node", name=name, status="done" if ok else "failed", **result)
        if failed:
            break
    say("end")
except KeyboardInterrupt:
    for ref, name in asked.items():
        try:
            ray.cancel(ref)  # KeyboardInterrupt in the task: it stops its uv's process group
        except Exception:
            pass
    try:  # a moment for the tasks to stop their uv before this driver, and its job, end
        ray.wait(list(asked), num_returns=len(asked), timeout=20)
    except BaseException:
        pass
    for name in asked.values():
        say("node", name=name, status="cancelled")
    raise
finally:
    ray.shutdown()
"""
