"""What the study page says besides its tables: the gain plot and the takeaway paragraph.

:func:`gain_plot_png` draws the PSNR-Y gain of every method on every suite as grouped bars with
the bootstrap intervals as error bars (matplotlib's object API, Agg canvas: no display, no
pyplot state); :func:`takeaway` writes a few sentences from the numbers: which method ranks
first and by how much, whether the intervals overlap, how it stands against the reference, and
on which suites the unified model is beaten.
"""

from __future__ import annotations

import io

from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from girml.evaluation.harness import MODEL_METHOD
from girml.evaluation.leaderboard import Estimate, Leaderboard, MethodResult
from girml.evaluation.uncertainty import LEVEL

PLOT_DPI = 100


def gain_plot_png(board: Leaderboard) -> bytes:
    """PNG bytes of the PSNR-Y gain per suite (x) and method (bars, rank order), the intervals
    as error bars; an empty board gives a figure that says so."""
    suites = board.suites()
    methods = [m for m in board.methods if m.suites]
    width_in = max(6.0, 1.0 + len(suites) * (0.35 + 0.16 * len(methods)))
    fig = Figure(figsize=(width_in, 4.2))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    if not suites or not methods:
        ax.text(0.5, 0.5, "no gains to plot", ha="center", va="center")
        ax.set_axis_off()
    else:
        cmap = colormaps["tab10" if len(methods) <= 10 else "tab20"]
        bar = 0.8 / len(methods)
        for index, method in enumerate(methods):
            xs, values, errors = [], [], ([], [])
            for s, suite in enumerate(suites):
                stats = method.suites.get(suite)
                if stats is None:
                    continue
                est = stats.psnr_gain
                xs.append(s - 0.4 + bar * (index + 0.5))
                values.append(est.value)
                errors[0].append(max(est.value - est.low, 0.0))
                errors[1].append(max(est.high - est.value, 0.0))
            ax.bar(
                xs,
                values,
                bar,
                yerr=errors,
                capsize=2,
                label=method.method,
                color=cmap(index % cmap.N),
                edgecolor="black" if method.method == board.reference else "none",
                linewidth=1.2,
                error_kw={"elinewidth": 0.8},
            )
        ax.axhline(0.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(suites)), suites, fontsize=9)
        ax.set_ylabel("PSNR-Y gain (dB)")
        ax.set_title(f"Gain per suite, {round(100 * LEVEL)}% bootstrap intervals")
        ax.legend(fontsize=8, ncol=1, loc="upper left", bbox_to_anchor=(1.01, 1.0))
        ax.grid(axis="y", alpha=0.3)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=PLOT_DPI, bbox_inches="tight")
    return buffer.getvalue()


def _db(value: float) -> str:
    return f"{value:+.2f} dB"


def _interval(est: Estimate) -> str:
    return f"[{est.low:+.2f}, {est.high:+.2f}]"


def _overlap(a: Estimate, b: Estimate) -> bool:
    return a.low <= b.high and b.low <= a.high


def takeaway(board: Leaderboard, model: str = MODEL_METHOD) -> list[str]:
    """Sentences that sum up the leaderboard, from its numbers only.

    Args:
        board: the leaderboard.
        model: the unified model's method name (where it loses is said when it is there).

    Returns:
        The sentences in reading order (empty when no method has a GIR score).
    """
    scored = [m for m in board.methods if m.gir_score is not None]
    if not scored:
        return []
    first = scored[0]
    out = [
        f"{first.method} ranks first with a GIR score of {_db(first.gir_score.value)} "
        f"{_interval(first.gir_score)}."
    ]
    if len(scored) > 1:
        second = scored[1]
        lead = first.gir_score.value - second.gir_score.value
        verdict = (
            "their intervals overlap, so the order of the two is not settled"
            if _overlap(first.gir_score, second.gir_score)
            else "their intervals do not overlap"
        )
        out.append(
            f"It leads {second.method} ({_db(second.gir_score.value)}) by {lead:.2f} dB; {verdict}."
        )
    out.append(_against_reference(board, first, scored))
    if any(m.method == model for m in board.methods):
        out.append(_where_model_loses(board, board.method(model)))
    return out


def _against_reference(board: Leaderboard, first: MethodResult, scored: list[MethodResult]) -> str:
    """How the first method stands against the reference (paired difference)."""
    ref = board.reference
    if first.method == ref:
        if len(scored) < 2 or scored[1].gir_score_diff is None:
            return f"The reference, {ref}, is the first."
        diff = scored[1].gir_score_diff
        clear = "excludes" if diff.excludes_zero() else "includes"
        return (
            f"The reference, {ref}, is the first: the next method's paired difference to it is "
            f"{_db(diff.value)} {_interval(diff)}, an interval that {clear} zero."
        )
    diff = first.gir_score_diff
    if diff is None:
        return f"{first.method} shares no scored image with the reference, {ref}."
    verdict = (
        f"clearly {'better' if diff.value > 0 else 'worse'} than {ref}"
        if diff.excludes_zero()
        else f"not clearly different from {ref} (the interval includes zero)"
    )
    return (
        f"Paired on the same images, it is {_db(diff.value)} {_interval(diff)} against the "
        f"reference: {verdict}."
    )


def _where_model_loses(board: Leaderboard, model: MethodResult) -> str:
    """The suites where another method's gain beats the unified model's, with the margin."""
    losses = []
    for suite, mine in model.suites.items():
        rivals = [
            (m.suites[suite].psnr_gain, m.method)
            for m in board.methods
            if m.method != model.method and suite in m.suites
        ]
        if not rivals:
            continue
        best, name = max(rivals, key=lambda pair: pair[0].value)
        if best.value > mine.psnr_gain.value:
            apart = "" if _overlap(best, mine.psnr_gain) else ", intervals apart"
            losses.append(
                f"{suite} to {name} ({_db(best.value)} vs {_db(mine.psnr_gain.value)}{apart})"
            )
    if not losses:
        return f"The unified model ({model.method}) has the best gain on every suite it has."
    return f"The unified model ({model.method}) is beaten on " + "; ".join(losses) + "."
