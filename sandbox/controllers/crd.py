"""CustomResourceDefinition status, as kube-apiserver's naming and
establishing controllers write it (manager ``kube-apiserver``): ``acceptedNames``
= ``spec.names`` (with the defaulted singular and listKind), ``NamesAccepted``
and ``Established`` True, and the storage version in ``storedVersions``.
"""

from __future__ import annotations

import copy
from typing import Any

from sandbox.controllers.base import CRDS, Controller, Obj, deleting, now, set_condition

MANAGER = "kube-apiserver"


def accepted_names(spec: Obj) -> Obj:
    names = spec.get("names") or {}
    kind = str(names.get("kind", ""))
    out: Obj = {"plural": names.get("plural", ""), "singular": names.get("singular") or kind.lower()}
    if names.get("shortNames"):
        out["shortNames"] = list(names["shortNames"])
    out["kind"] = kind
    out["listKind"] = names.get("listKind") or f"{kind}List"
    if names.get("categories"):
        out["categories"] = list(names["categories"])
    return out


class CRDController(Controller):
    name = "apiextensions"
    primary = CRDS

    def reconcile(self, item: Any) -> None:
        _, name = item
        crd = self.get(CRDS, "", name)
        if crd is None or deleting(crd):
            return
        spec = crd.get("spec") or {}
        old: Obj = crd.get("status") or {}
        status = copy.deepcopy(old)
        stamp = now()
        conds = list(status.get("conditions") or [])
        conds = set_condition(conds, "NamesAccepted", "True", "NoConflicts", "no conflicts found", stamp)
        conds = set_condition(conds, "Established", "True", "InitialNamesAccepted",
                              "the initial names have been accepted", stamp)
        status["acceptedNames"] = accepted_names(spec)
        status["conditions"] = conds
        stored = list(status.get("storedVersions") or [])
        for v in spec.get("versions") or []:
            if v.get("storage") and v.get("name") not in stored:
                stored.append(v["name"])
        status["storedVersions"] = stored
        if status != old:
            self.update_status(CRDS, crd, status, manager=MANAGER)
