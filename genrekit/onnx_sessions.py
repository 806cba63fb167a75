"""onnxruntime sessions that use one core each, fully.

genrekit's parallelism is its workers (``--jobs`` pool processes, the server's analysis
workers, Ray tasks), one per core; a session inside a worker therefore runs on one thread.
onnxruntime's default instead starts a thread per core in every session, and its threads
spin-wait between operators: on a machine whose cores are all busy with workers that spinning
is pure waste (a 30-s clip cost 1.1 s of CPU for 0.56 s of wall with the defaults). So: one
intra-op thread, one inter-op thread, sequential execution, no spin-waiting
(``session.intra_op.allow_spinning = 0``; see onnxruntime's "Thread management" notes).
"""

from __future__ import annotations

#: Session configuration entries that stop onnxruntime's threads from spin-waiting.
NO_SPINNING = {"session.intra_op.allow_spinning": "0", "session.inter_op.allow_spinning": "0"}


def session_options(threads: int = 1):
    """``onnxruntime.SessionOptions`` for ``threads`` intra-op threads (default one), no spin-waiting."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = max(1, int(threads))
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    for key, value in NO_SPINNING.items():
        options.add_session_config_entry(key, value)
    options.log_severity_level = 3  # callers say what failed; spare the C++ log lines
    return options


def run_session(session, outputs: list[str], feeds: dict, *, model_path) -> list:
    """``session.run(outputs, feeds)``, onnxruntime's failures as a :class:`~genrekit.errors.BundleError`.

    Call it with inputs already checked (shape, finite values): a graph that then fails inside
    onnxruntime (a ``ConstantOfShape`` asking for 10^12 floats, an operator with impossible
    attributes) is the model's fault, not the song's, and the error names the model at
    ``model_path`` and the operator that failed, in one line.
    """
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    from genrekit.errors import BundleError

    failures = tuple(getattr(ort_errors, name) for name in ("Fail", "RuntimeException", "InvalidArgument",
                                                             "EPFail", "NotImplemented", "InvalidGraph")
                     if hasattr(ort_errors, name))
    quiet = ort.RunOptions()
    quiet.log_severity_level = 4  # the failure is raised, named, below: no C++ log line on stderr as well
    try:
        return session.run(outputs, feeds, quiet)
    except failures as exc:
        raise BundleError(model_path, f"the model's graph failed when run ({run_failure(exc)}): "
                                      "the bundle is broken") from None
    except MemoryError:
        raise BundleError(model_path, "the model's graph asked for more memory than there is when run: "
                                      "the bundle is broken") from None


def run_failure(exc: BaseException) -> str:
    """onnxruntime's run-time error as a short phrase: the operator that failed and why (no C++ source paths)."""
    import re

    text = " ".join(str(exc).split())
    node = re.search(r"running (\S+) node", text)
    why = re.search(r"(Failed to allocate memory[^.]*?)(?: ?$|\.)", text) or re.search(r"Status Message: (.*)$", text)
    reason = why.group(1) if why else text
    reason = re.sub(r"Failed to allocate memory for requested buffer of size (\d+)", r"cannot allocate \1 bytes", reason)
    reason = re.sub(r"/\S+\.(?:cc|h|cpp):\d+ ?", "", reason)  # onnxruntime's own source files
    reason = re.sub(r"\S+::\S+\([^)]*\)\s*", "", reason).strip() or "no reason given"
    phrase = f"{node.group(1)}: {reason}" if node else reason
    return phrase if len(phrase) <= 100 else phrase[:97] + "..."
