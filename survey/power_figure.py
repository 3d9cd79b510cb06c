"""The power curve of a sample-size plan (matplotlib, in the house style of
:mod:`studyplatform.figures`): power against participants per condition, each point with
its 95 % Monte Carlo interval (± 1.96 MC SE), the target power as a dashed line and the
answer marked."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.ticker import MaxNLocator, PercentFormatter

from studyplatform.figures import INK, MUTED, PALETTE
from survey.power import PlanResult

TITLE = "Power against participants per condition"


@dataclass(frozen=True)
class PowerCurveFigure:
    title: str
    #: (participants, power, Monte Carlo SE) per point
    points: tuple[tuple[int, float, float], ...]
    target: float
    answer: int | None

    size = (3.6, 2.6)

    def draw(self, fig) -> None:
        ax = fig.add_subplot()
        n = np.array([p[0] for p in self.points], float)
        power = np.array([p[1] for p in self.points])
        half = 1.959963984540054 * np.array([p[2] for p in self.points])
        low, high = np.clip(power - half, 0, 1), np.clip(power + half, 0, 1)
        ax.errorbar(
            n,
            power,
            yerr=[power - low, high - power],
            fmt="o-",
            color=PALETTE[0],
            label="simulated (95 % MC interval)",
        )
        ax.axhline(
            self.target, color=INK, linestyle="--", linewidth=0.8, label=f"target {self.target:g}"
        )
        if self.answer is not None:
            ax.axvline(
                self.answer, color=MUTED, linestyle=":", linewidth=1, label=f"answer: {self.answer}"
            )
        ax.set_ylim(-0.03, 1.03)
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
        ax.xaxis.set_major_locator(MaxNLocator(6, integer=True))
        ax.set_xlabel("participants per condition")
        ax.set_ylabel("power")
        handles, labels = ax.get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=2)


def power_figure(result: PlanResult) -> PowerCurveFigure:
    return PowerCurveFigure(
        title=TITLE,
        points=tuple((c.participants, c.power, c.mc_se) for c in result.curve),
        target=result.plan.power,
        answer=result.participants,
    )
