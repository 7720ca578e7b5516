"""The rollout page's picture of its analysis: each stored measurement
(AnalysisMeasurement) against its baseline and its limit, and the verdict.

Server-rendered inline SVG, drawn with presentation attributes only (no
script, no style attribute): it needs no JavaScript and passes the
Content-Security-Policy. Each measurement is one slot on the x axis; within
it the baseline (grey), the limit (red, dashed) and the new version's value
(a dot coloured by its phase), so a baseline that drifts shows as steps and a
measurement without data as a hollow mark on the axis.
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from django.utils import timezone
from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

from rollouts.models import AnalysisMeasurement, Rollout, RolloutState
from rollouts.spec.choices import AnalysisTemplate

SUCCESSFUL, FAILED, INCONCLUSIVE, ERROR = (
    "Successful",
    "Failed",
    "Inconclusive",
    "Error",
)
# rollouts.analysis.rules' phases, as a person reads them, and their colours.
PHASES = {
    SUCCESSFUL: ("passed", "#2b8a3e"),
    FAILED: ("failed", "#c92a2a"),
    INCONCLUSIVE: ("inconclusive", "#e67700"),
    ERROR: ("error", "#868e96"),
}
# rollouts.analysis.templates' units (the webui must not import analysis/).
UNITS: dict[str, str] = {
    AnalysisTemplate.WORKER_HASH_RATE: "hashes/s",
    AnalysisTemplate.RNG_LATENCY: "s",
    AnalysisTemplate.HASHER_LATENCY: "s",
    AnalysisTemplate.HASHER_ERRORS: "share",
}
TONES = {"ok": "#2b8a3e", "bad": "#c92a2a", "warn": "#e67700", "idle": "#495057"}

WIDTH, HEIGHT = 760, 300
LEFT, RIGHT, TOP, BOTTOM = 70, 150, 48, 44
BASELINE_COLOUR, LIMIT_COLOUR, AXIS_COLOUR = "#495057", "#c92a2a", "#adb5bd"


@dataclass(frozen=True)
class Verdict:
    """What the analysis decided, in one line, and its tone (ok, bad, warn,
    idle: the admin's badge colours)."""

    text: str
    tone: str


def verdict(rollout: Rollout, phases: Sequence[str]) -> Verdict:
    """The analysis' verdict from the rollout's records: its canary state,
    its final state and the phases of its measurements, oldest first."""
    counts = Counter(phases)
    tally = ", ".join(
        f"{counts[phase]} {PHASES[phase][0]}" for phase in PHASES if counts[phase]
    )
    state = RolloutState(rollout.state).label.lower()
    if rollout.canary_state == "dry-run":
        return Verdict(f"Dry run ({tally}): measured, never acted on", "idle")
    if counts[FAILED] and rollout.state == RolloutState.ROLLED_BACK:
        return Verdict(
            f"Failed ({tally}): the new version is past the limit; rolled back", "bad"
        )
    if rollout.canary_state == "promoted":
        who = rollout.promote_requested_by
        how = f"promoted by {who}" if who else "passed; promoted"
        tone = "ok" if rollout.state != RolloutState.ROLLED_BACK else "bad"
        return Verdict(f"{how.capitalize()} ({tally}); the rollout is {state}", tone)
    if rollout.canary_state == "passed":
        tone = "ok" if rollout.state == RolloutState.COMPLETED else "idle"
        return Verdict(
            f"Passed ({tally}) during the stability window; the rollout is {state}",
            tone,
        )
    if rollout.canary_state in ("holding", "window") and not rollout.is_final:
        if counts[INCONCLUSIVE] or counts[ERROR]:
            return Verdict(
                f"Holding ({tally}): inconclusive, never promoted; an operator "
                "promotes or aborts",
                "warn",
            )
        return Verdict(f"Measuring ({tally}): held until it decides", "idle")
    return Verdict(f"{tally or 'no measurement'}; the rollout is {state}", "idle")


def _show(value: float, unit: str) -> str:
    if unit == "share":
        return f"{value * 100:.1f} %"
    return f"{value:.2f}" if abs(value) >= 0.1 or value == 0 else f"{value:.3g}"


def _finite(value: float | None) -> float | None:
    """None for no figure, NaN and infinities alike (nothing to draw)."""
    return value if value is not None and math.isfinite(value) else None


def _ticks(top: float) -> list[float]:
    return [top * i / 4 for i in range(5)]


def analysis_svg(
    measurements: Sequence[AnalysisMeasurement], result: Verdict
) -> SafeString:
    """The picture: one slot per measurement, oldest first, and the verdict
    above them. An empty string when nothing was measured."""
    if not measurements:
        return mark_safe("")
    template = measurements[0].template
    unit = UNITS.get(template, "")
    figures = [
        f
        for m in measurements
        for f in (_finite(m.value), _finite(m.baseline), _finite(m.limit))
        if f is not None
    ]
    top = max(figures, default=0) * 1.2 or 1.0
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM
    slot = plot_w / len(measurements)

    def y(value: float) -> float:
        return TOP + plot_h - plot_h * min(value, top) / top

    parts = [_frame(top, unit), _verdict_banner(result)]
    every = max(1, len(measurements) // 10)
    for index, m in enumerate(measurements):
        left = LEFT + index * slot
        parts.append(_measurement(m, index, left, slot, y, unit, every))
    parts.append(_legend())
    title = f"Analysis of rollout #{measurements[0].rollout_id}: {result.text}"
    return format_html(
        # Its own size (an inline SVG sized 100% inside the admin's
        # read-only field shrinks to the 300-pixel default); admin.css lets
        # it narrow on a small screen.
        '<svg class="rollouts-analysis" role="img" viewBox="0 0 {} {}" '
        'width="{}" height="{}" xmlns="http://www.w3.org/2000/svg" '
        'font-family="sans-serif" font-size="12"><title>{}</title>{}</svg>',
        WIDTH,
        HEIGHT,
        WIDTH,
        HEIGHT,
        title,
        mark_safe("".join(parts)),
    )


def _frame(top: float, unit: str) -> str:
    lines = []
    for tick in _ticks(top):
        level = TOP + (HEIGHT - TOP - BOTTOM) * (1 - tick / top)
        lines.append(
            f'<line x1="{LEFT}" x2="{WIDTH - RIGHT}" y1="{level:.1f}" '
            f'y2="{level:.1f}" stroke="{AXIS_COLOUR}" stroke-width="0.5"/>'
            f'<text x="{LEFT - 6}" y="{level + 4:.1f}" text-anchor="end" '
            f'fill="#495057">{escape(_show(tick, unit))}</text>'
        )
    label = "error share" if unit == "share" else unit
    lines.append(
        f'<text x="12" y="{TOP + (HEIGHT - TOP - BOTTOM) / 2:.0f}" '
        f'transform="rotate(-90 12 {TOP + (HEIGHT - TOP - BOTTOM) / 2:.0f})" '
        f'text-anchor="middle" fill="#495057">{escape(label)}</text>'
    )
    return "".join(lines)


def _verdict_banner(result: Verdict) -> str:
    colour = TONES.get(result.tone, TONES["idle"])
    return (
        f'<g class="rollouts-verdict" data-tone="{result.tone}">'
        f'<rect x="{LEFT}" y="8" width="{WIDTH - LEFT - 8}" height="24" rx="4" '
        f'fill="{colour}" fill-opacity="0.12" stroke="{colour}"/>'
        f'<text x="{LEFT + 8}" y="24" fill="{colour}" font-weight="bold">'
        f"Verdict: {escape(result.text)}</text></g>"
    )


def _measurement(
    m: AnalysisMeasurement,
    index: int,
    left: float,
    slot: float,
    y: Callable[[float], float],
    unit: str,
    every: int,
) -> str:
    word, colour = PHASES.get(m.phase, (m.phase.lower(), PHASES[ERROR][1]))
    pad = min(slot * 0.15, 12)
    x1, x2, middle = left + pad, left + slot - pad, left + slot / 2
    bottom = HEIGHT - BOTTOM
    shapes = []
    value, baseline, limit = _finite(m.value), _finite(m.baseline), _finite(m.limit)
    if baseline is not None:
        level = y(baseline)
        shapes.append(
            f'<line class="rollouts-baseline" x1="{x1:.1f}" x2="{x2:.1f}" '
            f'y1="{level:.1f}" y2="{level:.1f}" stroke="{BASELINE_COLOUR}" '
            'stroke-width="2"/>'
        )
    if limit is not None:
        level = y(limit)
        shapes.append(
            f'<line class="rollouts-limit" x1="{x1:.1f}" x2="{x2:.1f}" '
            f'y1="{level:.1f}" y2="{level:.1f}" stroke="{LIMIT_COLOUR}" '
            'stroke-width="2" stroke-dasharray="6 4"/>'
        )
    if value is not None:
        level = y(value)
        shapes.append(
            f'<circle cx="{middle:.1f}" cy="{level:.1f}" r="6" fill="{colour}"/>'
            f'<text x="{middle:.1f}" y="{level - 10:.1f}" text-anchor="middle" '
            f'fill="{colour}">{escape(_show(value, unit))}</text>'
        )
    else:
        shapes.append(
            f'<circle cx="{middle:.1f}" cy="{bottom:.1f}" r="6" fill="#fff" '
            f'stroke="{colour}" stroke-width="2"/>'
            f'<text x="{middle:.1f}" y="{bottom - 12:.1f}" text-anchor="middle" '
            f'fill="{colour}">{"no data" if m.phase != ERROR else "error"}</text>'
        )
    if index % every == 0:
        at = timezone.localtime(m.at).strftime("%H:%M:%S")
        shapes.append(
            f'<text x="{middle:.1f}" y="{bottom + 16}" text-anchor="middle" '
            f'fill="#495057">#{index + 1} {word}</text>'
            f'<text x="{middle:.1f}" y="{bottom + 30}" text-anchor="middle" '
            f'fill="#868e96">{at}</text>'
        )
    dry = " (dry run)" if m.dry_run else ""
    return (
        f'<g class="rollouts-measurement" data-phase="{escape(m.phase)}">'
        f"<title>#{index + 1} {escape(word)}{dry}: {escape(m.message)}</title>"
        f"{''.join(shapes)}</g>"
    )


def _legend() -> str:
    x = WIDTH - RIGHT + 16
    rows = [
        f'<line x1="{x}" x2="{x + 22}" y1="{TOP + 6}" y2="{TOP + 6}" '
        f'stroke="{BASELINE_COLOUR}" stroke-width="2"/>'
        f'<text x="{x + 28}" y="{TOP + 10}">baseline (old)</text>',
        f'<line x1="{x}" x2="{x + 22}" y1="{TOP + 26}" y2="{TOP + 26}" '
        f'stroke="{LIMIT_COLOUR}" stroke-width="2" stroke-dasharray="6 4"/>'
        f'<text x="{x + 28}" y="{TOP + 30}">limit</text>',
    ]
    for n, (word, colour) in enumerate(PHASES.values()):
        row = TOP + 50 + n * 20
        rows.append(
            f'<circle cx="{x + 11}" cy="{row}" r="5" fill="{colour}"/>'
            f'<text x="{x + 28}" y="{row + 4}">new: {word}</text>'
        )
    hollow = TOP + 50 + len(PHASES) * 20
    rows.append(
        f'<circle cx="{x + 11}" cy="{hollow}" r="5" fill="#fff" stroke="#e67700" '
        f'stroke-width="2"/><text x="{x + 28}" y="{hollow + 4}">no data</text>'
    )
    return f'<g class="rollouts-legend" fill="#495057">{"".join(rows)}</g>'
