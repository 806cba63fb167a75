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
