"""The report as data: what :func:`lightning_attn.report.build_report` found, in the order the pages show it —
a :class:`Report` and, per task, its :class:`TaskSection`. The writers (:mod:`.render`) read only this."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .aggregate import MIN_SEEDS, Failure, Row
from .comparisons import PairTest
from .decision import Decision
from .diagnostics import Diagnosis
from .plots import Plot
from .speed import SpeedPass
from .verdict import TaskVerdict

TITLE = "Attention trade-offs"


@dataclass
class TaskSection:
    """One task's part of the report."""

    task: str
    rows: list[Row]  # the table, one row per mechanism
    diagnoses: list[Diagnosis]
    verdict: TaskVerdict
    tests: list[PairTest]  # every pair's tests (the family)
    speed: SpeedPass | None  # the side-by-side speed pass (None: none was run)
    plots: list[Plot]
    gallery: dict[str, list[Path]]  # mechanism -> its best run's attention pictures


@dataclass
class Report:
    """Everything a report shows. ``plots``, ``gallery`` and ``source`` only where a page is drawn (HTML, Markdown)."""

    rows: list[Row]
    tests: list[PairTest]
    diagnoses: list[Diagnosis]
    verdicts: dict[str, TaskVerdict]  # by task
    decisions: dict[str, Decision] = field(default_factory=dict)  # by task
    warnings: list[str] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    constraints: list[str] = field(default_factory=list)  # as asked (``--constraint``)
    min_seeds: int = MIN_SEEDS
    margins: dict[str, float] = field(default_factory=dict)  # of practical equivalence, by task
    importance_evaluator: str = ""
    speed: dict[str, SpeedPass] = field(default_factory=dict)  # by task
    plots: list[Plot] = field(default_factory=list)
    gallery: dict[str, dict[str, list[Path]]] = field(default_factory=dict)  # task -> mechanism -> pictures
    source: str = ""  # which runs, from where, when
    title: str = TITLE

    @property
    def tasks(self) -> list[str]:
        return sorted({r.task for r in self.rows})

    def sections(self) -> list[TaskSection]:
        """Each task's part, in the order of :attr:`tasks`."""
        return [
            TaskSection(
                task=task,
                rows=[r for r in self.rows if r.task == task],
                diagnoses=[d for d in self.diagnoses if d.task == task],
                verdict=self.verdicts[task],
                tests=[t for t in self.tests if t.task == task],
                speed=self.speed.get(task),
                plots=[p for p in self.plots if p.task == task],
                gallery=self.gallery.get(task, {}),
            )
            for task in self.tasks
        ]
