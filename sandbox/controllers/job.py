"""Job controller (no Pods): ``startTime`` and ``active`` at once, then after
``pace`` the Job completes (``succeeded`` = completions, ``completionTime``,
conditions SuccessCriteriaMet and Complete, as 1.31+ writes them) or, with a
``fail``-tagged image, fails (FailureTarget and Failed, BackoffLimitExceeded).
A suspended Job reports ``Suspended`` and does not start.
"""

from __future__ import annotations

from typing import Any

from sandbox.controllers.base import (
    JOBS,
    Controller,
    Obj,
    deleting,
    find_condition,
    meta_of,
    now,
    set_condition,
    template_fails,
)

DONE = "Reached expected number of succeeded pods"
BACKOFF = "Job has reached the specified backoff limit"


def completed_indexes(n: int) -> str:
    """kube's compressed interval format for indexes 0..n-1 ("0", "0,1", "0-4")."""
    if n <= 0:
        return ""
    if n == 1:
        return "0"
    if n == 2:
        return "0,1"
    return f"0-{n - 1}"


class JobController(Controller):
    name = "job"
    primary = JOBS

    def reconcile(self, item: Any) -> None:
        ns, name = item
        job = self.get(JOBS, ns, name)
        if job is None or deleting(job):
            return
        old: Obj = job.get("status") or {}
        for ctype in ("Complete", "Failed"):
            cond = find_condition(old.get("conditions"), ctype)
            if cond is not None and cond.get("status") == "True":
                return
        spec = job.get("spec") or {}
        stamp = now()
        conds = list(old.get("conditions") or [])
        if spec.get("suspend"):
            conds = set_condition(conds, "Suspended", "True", "JobSuspended", "Job suspended", stamp, probe_time=True)
            self._write(job, {"conditions": conds, "ready": 0, "terminating": 0, "uncountedTerminatedPods": {}})
            return
        suspended = find_condition(conds, "Suspended")
        if suspended is not None and suspended.get("status") == "True":
            conds = set_condition(conds, "Suspended", "False", "JobResumed", "Job resumed", stamp, probe_time=True)
        start = old.get("startTime") or stamp
        completions = spec.get("completions")
        parallelism = 1 if spec.get("parallelism") is None else int(spec["parallelism"])
        status: Obj = {}
        if not self.elapsed(meta_of(job)["uid"], "run", item):
            if conds:
                status["conditions"] = conds
            status["startTime"] = start
            active = min(parallelism, int(completions)) if completions is not None else parallelism
            if active:
                status["active"] = active
        elif template_fails(job):
            conds = set_condition(conds, "FailureTarget", "True", "BackoffLimitExceeded", BACKOFF, stamp, probe_time=True)
            conds = set_condition(conds, "Failed", "True", "BackoffLimitExceeded", BACKOFF, stamp, probe_time=True)
            backoff = 6 if spec.get("backoffLimit") is None else int(spec["backoffLimit"])
            status = {"conditions": conds, "startTime": start, "failed": backoff + 1}
        else:
            n = 1 if completions is None else int(completions)
            conds = set_condition(conds, "SuccessCriteriaMet", "True", "CompletionsReached", DONE, stamp, probe_time=True)
            conds = set_condition(conds, "Complete", "True", "CompletionsReached", DONE, stamp, probe_time=True)
            status = {"conditions": conds, "startTime": start, "completionTime": stamp, "succeeded": n}
            if spec.get("completionMode") == "Indexed":
                status["completedIndexes"] = completed_indexes(n)
        status["terminating"] = 0
        status["uncountedTerminatedPods"] = {}
        status["ready"] = 0
        self._write(job, status)

    def _write(self, job: Obj, status: Obj) -> None:
        if status != (job.get("status") or {}):
            self.update_status(JOBS, job, status)
