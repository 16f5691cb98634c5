"""Module paths from before the package layout (allocator.build, allocator.batch, ...)
keep working: each old name is the new module itself, under a second name. Nothing is
copied and no file stands at the old place; new code imports the new paths."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

OLD_PATHS = {
    "allocator.build": "allocator.lp.build",
    "allocator.check": "allocator.lp.check",
    "allocator.generate": "allocator.scenario.generate",
    "allocator.export": "allocator.solvers.export",
    "allocator.report": "allocator.plan.report",
    "allocator.viz": "allocator.plan.charts",
    "allocator.whatif": "allocator.workflows.whatif",
    "allocator.planner": "allocator.workflows.planner",
    "allocator.batch": "allocator.workflows.batch",
    "allocator.partition": "allocator.workflows.partition",
    "allocator.stochastic": "allocator.workflows.stochastic",
    "allocator.replan": "allocator.workflows.replan",
    "allocator.analysis.counterfactuals": "allocator.workflows.counterfactuals",
    "allocator.cli_common": "allocator.cli.common",
}


class _OldPaths(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: object = None, target: object = None):
        if name not in OLD_PATHS:
            return None
        return importlib.machinery.ModuleSpec(name, self)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(OLD_PATHS[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """The module ran under its new name already."""


def install() -> None:
    if not any(isinstance(f, _OldPaths) for f in sys.meta_path):
        sys.meta_path.append(_OldPaths())
