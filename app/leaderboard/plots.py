"""The leaderboard's plots as inline SVG, drawn on the server so that they need no JavaScript.

Pure functions: data in, an SVG string out. Every piece of text that comes from the data
(model names above all) is escaped, in element text and in attributes alike.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import datetime
from html import escape
from typing import Any

FONT = 12
ROW = 24  # height of one model's row in the ratings plot
CELL = 44  # side of one heatmap cell
PALETTE = ("#2f5bd3", "#d9534f", "#2e9e5b", "#e08a1e", "#8e44ad", "#17a2b8", "#c2185b",
           "#6d8b00", "#795548", "#5c6bc0", "#00897b", "#b8860b")


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _label(name: str, limit: int = 24) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _svg(width: float, height: float, title: str, body: list[str], css_class: str) -> str:
    """The plot fills its box up to its drawn size, and shrinks no further than about 460 px
    (a phone scrolls it sideways rather than make its text unreadable)."""
    return (f'<svg xmlns="http://www.w3.org/2000/svg" class="plot-svg {css_class}" '
            f'viewBox="0 0 {width:.0f} {height:.0f}" preserveAspectRatio="xMinYMin meet" '
            f'style="width: 100%; height: auto; max-width: {width:.0f}px; '
            f'min-width: {min(width, 460):.0f}px" '
            f'role="img" aria-label="{_e(title)}" font-size="{FONT}" '
            f'font-family="system-ui, sans-serif"><title>{_e(title)}</title>'
            + "".join(body) + "</svg>")


def nice_ticks(low: float, high: float, count: int = 6) -> list[float]:
    """Round numbers spanning [low, high], about `count` of them."""
    if not (math.isfinite(low) and math.isfinite(high)) or high <= low:
        centre = low if math.isfinite(low) else 0.0
        low, high = centre - 1, centre + 1
    raw = (high - low) / max(count - 1, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    first = math.floor(low / step) * step
    ticks = []
    value = first
    while value < high + step * 0.999:
        ticks.append(round(value, 10))
        value += step
    return ticks


def _scale(domain: tuple[float, float], pixels: tuple[float, float]):
    (d0, d1), (p0, p1) = domain, pixels
    span = (d1 - d0) or 1.0
    return lambda value: p0 + (value - d0) / span * (p1 - p0)


def ratings_svg(models: Sequence[Mapping[str, Any]], title: str = "Ratings with 95% intervals") -> str:
    """One row per model: its rating as a dot and its 95% interval as a bar, in table order.
    Provisional models are drawn in grey."""
    shown = [m for m in models if m.get("rating") is not None]
    left, right, top, bottom, width = 190, 20, 10, 34, 680
    height = top + bottom + ROW * max(len(shown), 1)
    if not shown:
        return _svg(width, height, title, [
            f'<text x="{width / 2}" y="{top + ROW / 2 + 4}" text-anchor="middle" fill="#5b6478">'
            "No ratings yet</text>"], "ratings")
    values = [v for m in shown for v in (m["rating"], m.get("ci_lower"), m.get("ci_upper"))
              if v is not None]
    ticks = nice_ticks(min(values), max(values))
    x = _scale((ticks[0], ticks[-1]), (left, width - right))
    body = []
    for tick in ticks:
        body.append(f'<line x1="{x(tick):.1f}" x2="{x(tick):.1f}" y1="{top}" '
                    f'y2="{height - bottom}" stroke="#dde2ea"/>'
                    f'<text x="{x(tick):.1f}" y="{height - bottom + 16}" text-anchor="middle" '
                    f'fill="#5b6478">{tick:g}</text>')
    body.append(f'<text x="{(left + width - right) / 2:.0f}" y="{height - 4}" text-anchor="middle" '
                'fill="#5b6478">Bradley–Terry rating (Elo scale)</text>')
    for k, m in enumerate(shown):
        y = top + ROW * k + ROW / 2
        colour = "#9aa3b5" if m.get("provisional") else "#2f5bd3"
        name = str(m["name"])
        interval = ""
        if m.get("ci_lower") is not None and m.get("ci_upper") is not None:
            interval = f' (95% interval {m["ci_lower"]:.0f}–{m["ci_upper"]:.0f})'
            body.append(f'<line x1="{x(m["ci_lower"]):.1f}" x2="{x(m["ci_upper"]):.1f}" '
                        f'y1="{y:.1f}" y2="{y:.1f}" stroke="{colour}" stroke-width="4" '
                        'stroke-linecap="round" opacity="0.45"/>')
        provisional = ", provisional" if m.get("provisional") else ""
        body.append(
            f'<g class="rating-row" data-model="{_e(name)}">'
            f'<title>{_e(name)}: {m["rating"]:.0f}{_e(interval)}{provisional}</title>'
            f'<text x="{left - 8}" y="{y + 4:.1f}" text-anchor="end" fill="{"#5b6478" if m.get("provisional") else "#1d2433"}">'
            f'{_e(_label(name))}</text>'
            f'<circle cx="{x(m["rating"]):.1f}" cy="{y:.1f}" r="5" fill="{colour}"/></g>')
    return _svg(width, height, title, body, "ratings")


def _win_rate_colour(value: float) -> str:
    """Red below one half, white at one half, blue above."""
    t = max(0.0, min(1.0, value))
    if t < 0.5:
        s = (0.5 - t) * 2
        r, g, b = 255, round(255 - 150 * s), round(255 - 160 * s)
    else:
        s = (t - 0.5) * 2
        r, g, b = round(255 - 208 * s), round(255 - 164 * s), round(255 - 44 * s)
    return f"rgb({r},{g},{b})"


def _count_colour(value: float, top: float) -> str:
    s = (value / top) if top else 0.0
    return f"rgb({round(255 - 208 * s)},{round(255 - 164 * s)},{round(255 - 44 * s)})"


def heatmap_svg(names: Sequence[str], matrix: Sequence[Sequence[float | None]], kind: str) -> str:
    """The pairwise matrix as a heatmap, rows and columns in table order. kind "win_rate": the
    win rate of the row model over the column model (the S2S-Arena paper's Figure 3); kind
    "battles": how many votes each pair has."""
    if kind == "win_rate":
        title = "Win rate of the row model over the column model"
    elif kind == "battles":
        title = "Battles (votes) between each pair of models"
    else:
        raise ValueError(f"unknown heatmap kind {kind!r}")
    n = len(names)
    longest = max((len(_label(str(name))) for name in names), default=4)
    left, top = 16 + 7 * longest, 16 + 5.5 * longest
    # The column labels slant up to the right: the last one reaches about cos(50°) of its
    # length past its column.
    width = left + CELL * max(n, 1) + 10 + 4.6 * min(longest, 20)
    height = top + CELL * max(n, 1) + 10
    if not n:
        return _svg(width, height, title, [
            f'<text x="{width / 2}" y="{top}" text-anchor="middle" fill="#5b6478">No models yet</text>'],
            f"heatmap {kind}")
    peak = max((v for row in matrix for v in row if v is not None), default=0)
    body = []
    for j, name in enumerate(names):
        cx = left + CELL * j + CELL / 2
        body.append(f'<text transform="translate({cx + 4:.1f},{top - 6}) rotate(-50)" '
                    f'fill="#1d2433"><title>{_e(name)}</title>{_e(_label(name, 20))}</text>')
    for i, row_name in enumerate(names):
        y = top + CELL * i
        body.append(f'<text x="{left - 6}" y="{y + CELL / 2 + 4:.1f}" text-anchor="end" '
                    f'fill="#1d2433"><title>{_e(row_name)}</title>{_e(_label(row_name))}</text>')
        for j, col_name in enumerate(names):
            value = matrix[i][j] if i < len(matrix) and j < len(matrix[i]) else None
            x = left + CELL * j
            if i == j or value is None:
                fill, text, what = "#eef0f4", "", "itself" if i == j else "never met"
            elif kind == "win_rate":
                fill, text, what = _win_rate_colour(value), f"{value:.2f}", f"win rate {value:.2f}"
            else:
                fill, text, what = _count_colour(value, peak), f"{value:g}", f"{value:g} battles"
            ink = "#fff" if value is not None and (
                (kind == "win_rate" and abs(value - 0.5) > 0.3) or (kind == "battles" and peak
                                                                   and value / peak > 0.6)) else "#1d2433"
            body.append(
                f'<g class="cell" data-row="{_e(row_name)}" data-col="{_e(col_name)}">'
                f'<title>{_e(row_name)} vs {_e(col_name)}: {what}</title>'
                f'<rect x="{x}" y="{y}" width="{CELL - 1}" height="{CELL - 1}" fill="{fill}"/>'
                + (f'<text x="{x + CELL / 2:.1f}" y="{y + CELL / 2 + 4:.1f}" text-anchor="middle" '
                   f'font-size="11" fill="{ink}">{text}</text>' if text else "")
                + "</g>")
    return _svg(width, height, title, body, f"heatmap {kind}")


def _time_label(moment: datetime, span_seconds: float) -> str:
    if span_seconds < 600:
        return moment.strftime("%H:%M:%S")
    if span_seconds < 2 * 86400:
        return moment.strftime("%H:%M")
    if span_seconds < 300 * 86400:
        return moment.strftime("%d %b")
    return moment.strftime("%b %Y")


def history_svg(points: Sequence[tuple[datetime, int, Mapping[str, float]]],
                order: Sequence[str] = ()) -> str:
    """Each model's rating over time: points are (time, votes covered, {model name: rating}),
    one per stored snapshot, oldest first; `order` lists the models to colour first (the
    current table's order)."""
    title = "Ratings over time"
    left, right, top, bottom, width = 56, 16, 12, 40, 680
    plot_height = 260
    names = list(dict.fromkeys([*order, *(name for _, _, ratings in points for name in ratings)]))
    legend_rows = math.ceil(len(names) / 3)
    height = top + plot_height + bottom + 20 * legend_rows
    values = [v for _, _, ratings in points for v in ratings.values()]
    if len(points) < 2 or not values:
        return _svg(width, top + 60, title, [
            f'<text x="{width / 2}" y="{top + 30}" text-anchor="middle" fill="#5b6478">'
            "No history yet: this needs two tables with different votes</text>"], "history")
    times = [moment.timestamp() for moment, _, _ in points]
    ticks = nice_ticks(min(values), max(values))
    x = _scale((times[0], times[-1]), (left, width - right))
    y = _scale((ticks[0], ticks[-1]), (top + plot_height, top))
    body = []
    for tick in ticks:
        body.append(f'<line x1="{left}" x2="{width - right}" y1="{y(tick):.1f}" y2="{y(tick):.1f}" '
                    f'stroke="#dde2ea"/><text x="{left - 6}" y="{y(tick) + 4:.1f}" '
                    f'text-anchor="end" fill="#5b6478">{tick:g}</text>')
    span = times[-1] - times[0]
    labels = 5 if span >= 8 else 2  # a few seconds apart: just the first and the last
    for k in range(labels):
        moment = points[0][0] + (points[-1][0] - points[0][0]) * k / (labels - 1)
        tx = x(moment.timestamp())
        anchor = "start" if k == 0 else "end" if k == labels - 1 else "middle"
        body.append(f'<text x="{tx:.1f}" y="{top + plot_height + 16}" text-anchor="{anchor}" '
                    f'fill="#5b6478">{_e(_time_label(moment, span))}</text>')
    body.append(f'<text x="{(left + width - right) / 2:.0f}" y="{top + plot_height + 32}" '
                'text-anchor="middle" fill="#5b6478">time of the snapshot (UTC)</text>')
    for k, name in enumerate(names):
        colour = PALETTE[k % len(PALETTE)]
        series = [(when.timestamp(), votes, ratings[name]) for when, votes, ratings in points
                  if ratings.get(name) is not None]
        path = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, _, v in series)
        dots = "".join(
            f'<circle cx="{x(t):.1f}" cy="{y(v):.1f}" r="2.5" fill="{colour}">'
            f'<title>{_e(name)}: {v:.0f} after {votes} votes</title></circle>'
            for t, votes, v in series)
        legend_x = left + (k % 3) * 200
        legend_y = top + plot_height + bottom + 20 * (k // 3) + 8
        body.append(
            f'<g class="series" data-model="{_e(name)}">'
            f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>{dots}'
            f'<rect x="{legend_x}" y="{legend_y - 9}" width="12" height="12" fill="{colour}"/>'
            f'<text x="{legend_x + 18}" y="{legend_y + 1}" fill="#1d2433">{_e(_label(name, 26))}</text></g>')
    return _svg(width, height, title, body, "history")
