"""The grader's child: runs a submission's exercises (or computes its answers), in the sandbox.

Run as a script (``python -I _child.py spec.json``) in a fresh directory that holds a copy of
this file, the submission's definitions (``submission.py``) and each exercise's inputs
(``e{k}_inputs.pt``, written by the grader). It imports nothing of ``backbones.exercises`` (the
sandbox's copy of the library has no exercises in it, so no reference solution is within reach)
and hands back only *data*: a marker ``defined`` once the definitions have run, a marker
``e{k}_started`` as each exercise begins, and for each case the output encoded as JSON and
arrays (``e{k}_case_N.json``, ``.npz``), or the error the function raised.
Everything it writes is untrusted: the grader reads it with ``allow_pickle=False`` and decides
pass or fail itself (``backbones.exercises.grader``).

``encode`` and ``decode`` are the outputs' wire format, plain JSON plus arrays: the child encodes,
the grader decodes.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
import traceback
import types

MAX_MESSAGE = 500


def encode(value, arrays: dict, *, strict: bool = True):
    """``value`` as JSON-able data, its tensors (and arrays) put into ``arrays`` by key."""
    import numpy as np
    import torch

    if isinstance(value, torch.Tensor):
        with torch._C.DisableTorchFunctionSubclass():  # a subclass cannot dress up its values
            plain = torch.Tensor.as_subclass(value, torch.Tensor).detach().cpu()
            dtype = str(plain.dtype)
            if plain.dtype == torch.bfloat16:
                plain = plain.float()
            data = plain.contiguous().numpy().copy()
        key = f"a{len(arrays)}"
        arrays[key] = data
        return {"tensor": key, "dtype": dtype}
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if value is Ellipsis:  # a value exercise's untouched stub, `answer = ...`
        return {"ellipsis": None}
    if isinstance(value, np.ndarray) and not strict:
        return {"other": "ndarray", "repr": f"array of shape {value.shape}"}
    if isinstance(value, (tuple, list)):
        return {type(value).__name__: [encode(v, arrays, strict=strict) for v in value]}
    if isinstance(value, dict):
        return {"dict": [[str(k), encode(v, arrays, strict=strict)] for k, v in value.items()]}
    if strict:
        raise TypeError(f"cannot send a {type(value).__name__} to the sandbox")
    return {"other": type(value).__name__, "repr": repr(value)[:200]}


def _hide_the_installed_library() -> None:
    """Forget the editable install's finder and the checkout on the path: ``backbones`` comes
    from the sandbox's copy (``spec["library"]``), which has no exercises in it."""
    sys.meta_path[:] = [f for f in sys.meta_path if "__editable__" not in str(getattr(f, "__module__", ""))]
    sys.path_hooks[:] = [h for h in sys.path_hooks if "__editable__" not in str(getattr(h, "__module__", ""))]
    sys.path_importer_cache.clear()


def _where(error: BaseException) -> tuple[int | None, str]:
    frames = [f for f in traceback.extract_tb(error.__traceback__) if f.filename == "submission.py"]
    if not frames:
        return None, ""
    return frames[-1].lineno, (frames[-1].line or "")


class _Stop(BaseException):
    pass


def _alarm(signum, frame):
    raise _Stop


def _write(name: str, record: dict, arrays: dict | None = None) -> None:
    import numpy as np

    if arrays:
        np.savez(f"{name}.tmp.npz", **arrays)
        os.replace(f"{name}.tmp.npz", f"{name}.npz")
    with open(f"{name}.tmp", "w") as file:
        json.dump(record, file)
    os.replace(f"{name}.tmp", f"{name}.json")


# Imported when first used, not when the submission's imports name them: torchvision's import
# brings torch._dynamo (1.3 s of a child's 3.5 s start), pyplot and its 3-D axes another 0.35 s
# (measured 2026-12-06), and few checked functions touch them.
LAZY = ("torchvision", "matplotlib.pyplot", "mpl_toolkits.mplot3d")
_RUNS_IT = ("__path__", "__all__")  # the dunders that need the module's code (a submodule's import)


class _Deferred(types.ModuleType):
    """A module whose code runs at the first read of a name it lacks (``torchvision.ops``). Its
    ``__name__``, ``__file__`` and ``__spec__`` answer without running it, so that code which only
    looks at modules (``inspect.getmodule``, called in the middle of torch's own imports) does
    not start it there, where its imports would run into torch's half-made ones."""

    def __getattr__(self, name):
        state = self.__dict__.get("__deferred__")
        if state is None or (name.startswith("__") and name not in _RUNS_IT):
            raise AttributeError(name)
        loader, path = self.__dict__.pop("__deferred__")
        if path is not None:
            self.__path__ = path
        self.__class__ = types.ModuleType
        loader.exec_module(self)
        return getattr(self, name)


class _Defer:
    """The loader of a deferred module: makes it, and leaves its code for :class:`_Deferred`."""

    def __init__(self, loader):
        self.loader = loader

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module) -> None:
        module.__deferred__ = (self.loader, module.__dict__.pop("__path__", None))
        module.__loader__ = self.loader
        module.__class__ = _Deferred


def _import_lazily(names=LAZY) -> None:
    """Defer these modules' code: ``import torchvision`` binds the module, and its code runs at
    the first read of one of its names."""
    import importlib.abc
    import importlib.machinery

    class Lazy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name not in names:
                return None
            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is not None and hasattr(spec.loader, "exec_module"):
                spec.loader = _Defer(spec.loader)
            return spec

    sys.meta_path.insert(0, Lazy())


def main() -> None:
    spec = json.load(open(sys.argv[1]))
    _hide_the_installed_library()
    _import_lazily()
    sys.path.insert(0, spec["library"])
    import torch

    torch.set_num_threads(1)
    namespace = {"__name__": "submission"}
    try:
        exec(compile(open("submission.py").read(), "submission.py", "exec"), namespace)  # noqa: S102
    except BaseException as error:  # the definitions themselves fail: every case fails the same way
        line, code = _where(error)
        _write("load", {"error": type(error).__name__, "message": str(error)[:MAX_MESSAGE], "line": line, "code": code})
        return
    open("defined", "w").close()  # the grader tells a hang while defining from one in an exercise
    signal.signal(signal.SIGALRM, _alarm)
    if spec.get("kind") == "value":  # answers: each computed by the statements it needs, run in order
        errors: dict[int, dict] = {}
        for j, statement in enumerate(spec["statements"]):
            signal.setitimer(signal.ITIMER_REAL, spec["seconds_per_case"])
            try:
                exec(compile(statement, "submission.py", "exec"), namespace)  # noqa: S102
                signal.setitimer(signal.ITIMER_REAL, 0)
            except _Stop:
                errors[j] = {"timeout": spec["seconds_per_case"]}
            except BaseException as error:  # this statement's error, for the answers that need it
                signal.setitimer(signal.ITIMER_REAL, 0)
                errors[j] = {
                    "error": type(error).__name__,
                    "message": str(error)[:MAX_MESSAGE],
                    "line": None,
                    "code": statement[:200],
                }
        for i, (name, needs) in enumerate(spec["answers"]):
            failed = [errors[j] for j in needs if j in errors]
            out: dict = {}
            _write(
                f"case_{i}", failed[0] if failed else {"output": encode(namespace.get(name), out, strict=False)}, out
            )
        return
    for job in spec["jobs"]:  # one exercise after another; the grader watches the markers for time
        open(f"{job['prefix']}started", "w").close()
        cases = torch.load(f"{job['prefix']}inputs.pt", weights_only=False)  # written by the grader
        _run_job(
            namespace.get(job["function"]),
            job["function"],
            job["kind"],
            cases,
            job["prefix"],
            spec["seconds_per_case"],
            job.get("forbidden", []),
        )


def _run_job(
    fn, function: str, kind: str, cases: list, prefix: str, seconds: float, forbidden: list | None = None
) -> None:
    """Run one exercise's function on its cases, writing ``{prefix}case_N`` for each."""
    import torch

    for i, (args, kwargs) in enumerate(cases):
        signal.setitimer(signal.ITIMER_REAL, seconds)
        try:
            if kind == "module":  # build under a fixed seed, then apply to the last argument
                with watching(forbidden or []) as called:
                    result = build_and_apply(fn, args, kwargs, name=function)
            else:
                pristine = [a.clone() if isinstance(a, torch.Tensor) else None for a in args]
                pristine_kw = {k: a.clone() for k, a in kwargs.items() if isinstance(a, torch.Tensor)}
                modules = modules_among(args, kwargs)
                with watching(forbidden or []) as called:
                    result = fn(*args, **kwargs)
            signal.setitimer(signal.ITIMER_REAL, 0)
            out: dict = {}
            record = {"output": encode(result, out, strict=False), "forbidden": list(called)}
            if kind != "module":  # inputs the function changed in place, sent back as they are now
                record["modified"] = [
                    [j, encode(a, out)]
                    for j, (a, p) in enumerate(zip(args, pristine))
                    if p is not None and not same_tensor(p, a)
                ]
                record["modified"] += [
                    [k, encode(kwargs[k], out)] for k, p in pristine_kw.items() if not same_tensor(p, kwargs[k])
                ]
                record["module_effects"] = module_effects(modules, args, kwargs)
            _write(f"{prefix}case_{i}", record, out)
        except _Stop:
            _write(f"{prefix}case_{i}", {"timeout": seconds})
            return
        except BaseException as error:  # the student's error, reported as data
            signal.setitimer(signal.ITIMER_REAL, 0)
            line, code = _where(error)
            _write(
                f"{prefix}case_{i}",
                {
                    "error": type(error).__name__,
                    "message": str(error)[:MAX_MESSAGE],
                    "line": line,
                    "code": code[:200],
                    "todo": isinstance(error, NotImplementedError) and "raise NotImplementedError" in code,
                },
            )


def module_state(module) -> dict:
    """What a check expects a function to leave as it found it in a module it was given: each
    submodule's ``training`` flag and how many hooks it holds, by submodule name."""
    return {
        name: (
            m.training,
            len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) + len(m._backward_pre_hooks),
        )
        for name, m in module.named_modules()
    }


def module_effects(before: dict, args: tuple, kwargs: dict) -> list:
    """What a call did to the modules among its arguments: ``[slot, submodule, "training", now]``
    and ``[slot, submodule, "hooks", how many more]``. ``before``: ``{slot: module_state}``."""
    effects = []
    for slot, state in before.items():
        module = args[slot] if isinstance(slot, int) else kwargs.get(slot)
        after = module_state(module) if hasattr(module, "named_modules") else {}
        for name, (training, hooks) in state.items():
            now_training, now_hooks = after.get(name, (training, hooks))
            if now_training != training:
                effects.append([slot, name, "training", now_training])
            if now_hooks > hooks:
                effects.append([slot, name, "hooks", now_hooks - hooks])
    return effects


def modules_among(args: tuple, kwargs: dict) -> dict:
    """``{slot: module_state}`` for the arguments that are modules."""
    import torch

    slots = [(j, a) for j, a in enumerate(args)] + list(kwargs.items())
    return {slot: module_state(a) for slot, a in slots if isinstance(a, torch.nn.Module)}


def _resolve(dotted: str):
    """``"torch.nn.functional.conv2d"`` -> the object (the longest importable module, then
    attributes); None when it cannot be found (a library copy without that module)."""
    import importlib

    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            value = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for attribute in parts[cut:]:
                value = getattr(value, attribute)
        except AttributeError:
            return None
        return value
    return None


@contextlib.contextmanager
def watching(forbidden):
    """Record which of the ``forbidden`` callables (dotted names) are called inside the block,
    however they are reached (an alias, ``getattr``, a library function that calls one): Python
    functions by their code, classes by their ``__init__`` and ``forward``, C functions by
    identity, through the interpreter's profiling hook. Yields the list of names called."""
    called: list[str] = []
    codes, builtins_ = {}, {}
    for name in forbidden:
        target = _resolve(name)
        functions = (
            [getattr(target, m, None) for m in ("__init__", "forward")] if isinstance(target, type) else [target]
        )
        for function in functions:
            code = getattr(function, "__code__", None)
            if code is not None:
                codes[code] = name
            elif callable(function) and not isinstance(target, type):
                builtins_[id(function)] = name
    if not codes and not builtins_:
        yield called
        return

    def profile(frame, event, arg):
        name = None
        if event == "call":
            name = codes.get(frame.f_code)
        elif event == "c_call":
            name = builtins_.get(id(arg))
        if name is not None and name not in called:
            called.append(name)

    previous = sys.getprofile()
    sys.setprofile(profile)
    try:
        yield called
    finally:
        sys.setprofile(previous)


def same_tensor(before, after) -> bool:
    """Is ``after`` the tensor ``before`` was (same shape, dtype and values, NaN equal to NaN)?"""
    import torch

    if not isinstance(after, torch.Tensor) or before.shape != after.shape or before.dtype != after.dtype:
        return False
    return bool(torch.equal(before, after)) or (
        before.dtype.is_floating_point and bool(((before == after) | (before.isnan() & after.isnan())).all())
    )


def build_and_apply(builder, args: tuple, kwargs: dict, *, name: str = "the function"):
    """The module kind's one runner, in the notebook's check and in the sandbox alike: build the
    module from all but the last argument under seed 0 (the caller's random state left as it
    was), so that the same layers get the same weights, and apply it to the last argument."""
    import torch

    with torch.random.fork_rng():
        torch.manual_seed(0)
        module = builder(*args[:-1], **kwargs)
    if not isinstance(module, torch.nn.Module):
        raise TypeError(f"{name} must return an nn.Module (e.g. nn.Sequential), not {type(module).__name__}")
    with torch.no_grad():
        return module(args[-1])


def decode(data, arrays):
    """The inverse of :func:`encode` (used on inputs here, and by the grader on outputs)."""
    import torch

    if not isinstance(data, dict):
        raise ValueError("malformed data")
    if "tensor" in data:
        dtype = getattr(torch, str(data.get("dtype", "")).removeprefix("torch."), None)
        tensor = torch.from_numpy(arrays[str(data["tensor"])].copy())
        return tensor.to(dtype) if isinstance(dtype, torch.dtype) else tensor
    if "other" in data:  # what the wire cannot carry: its type's name, to say what was returned
        return type(str(data["other"])[:40] or "object", (), {})()
    if len(data) != 1:
        raise ValueError("malformed data")
    ((kind, body),) = data.items()
    if kind == "ellipsis":
        return ...
    if kind == "value":
        if body is not None and not isinstance(body, (bool, int, float, str)):
            raise ValueError("malformed value")
        return body
    if kind in ("tuple", "list"):
        items = [decode(v, arrays) for v in body]
        return tuple(items) if kind == "tuple" else items
    if kind == "dict":
        return {str(k): decode(v, arrays) for k, v in body}
    raise ValueError(f"malformed data: {kind!r}")


if __name__ == "__main__":
    main()
    # Everything the grader reads is written and closed by now; an interpreter that has imported
    # torch takes about a second to tear itself down, which the child skips (nor do the
    # submission's atexit handlers run).
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
