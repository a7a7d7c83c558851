"""The report's charts: Vega-Lite specifications built with Altair, drawn to static SVG by
vl-convert (Vega's own renderer, bundled in the wheel: no browser, no network, no script in
the page). Every chart states status by shape or dash as well as colour."""

from __future__ import annotations

import altair as alt
import pandas as pd
import vl_convert

WIDTH = 300
HEIGHT = 150
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif"
_MONTH_AXIS = alt.Axis(format="%b %y", labelAngle=0, labelOverlap=True, title=None)


def plain(frame: pd.DataFrame) -> pd.DataFrame:
    """Values the chart's JSON can hold: days as ISO text (read by Vega as UTC days),
    numbers as floats."""

    def value(v):
        if v is None:
            return None
        if hasattr(v, "isoformat"):
            return v.isoformat()[:10]
        if isinstance(v, bool | str):
            return v
        return float(v) if isinstance(v, int | float) or hasattr(v, "__float__") else v

    return frame.apply(lambda column: column.map(value))


def svg(chart: alt.TopLevelMixin) -> str:
    spec = chart.configure(font=FONT).configure_view(stroke=None).to_dict(validate=False)
    return vl_convert.vegalite_to_svg(spec)


def kpi_trend(months: pd.DataFrame, target: float | None, unit_label: str) -> str:
    """Monthly values with their 95 % band, the target as a dashed rule, months below the
    minimum sample drawn as hollow squares."""
    data = plain(months).assign(
        reliability=[
            "reliable" if flag is True else "n below minimum" for flag in months["is_reliable"]
        ]
    )
    base = alt.Chart(data).encode(x=alt.X("utcyearmonth(period_start):T", axis=_MONTH_AXIS))
    band = base.mark_area(opacity=0.25, color="#4c78a8").encode(
        y=alt.Y("ci_low:Q", title=unit_label, scale=alt.Scale(zero=False)), y2="ci_high:Q"
    )
    line = base.mark_line(color="#4c78a8").encode(y="value:Q")
    # hollow, not invisible: a month below the minimum keeps its outline
    points = base.mark_point(
        size=45, filled=True, color="#4c78a8", stroke="#4c78a8", strokeWidth=1.5
    ).encode(
        y="value:Q",
        shape=alt.Shape(
            "reliability:N",
            scale=alt.Scale(domain=["reliable", "n below minimum"], range=["circle", "square"]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        fillOpacity=alt.FillOpacity(
            "reliability:N",
            scale=alt.Scale(domain=["reliable", "n below minimum"], range=[1, 0.1]),
            legend=None,
        ),
    )
    layers = [band, line, points]
    if target is not None:
        rule = pd.DataFrame({"target": [target], "label": [f"target {target:g}"]})
        layers.append(
            alt.Chart(rule).mark_rule(strokeDash=[6, 4], color="#b85c00").encode(y="target:Q")
        )
    return svg(alt.layer(*layers).properties(width=WIDTH, height=HEIGHT))


def factor_quadrant(factors: pd.DataFrame) -> str:
    """Importance x performance (experience), split at the means; the key experience (the
    factor whose improvement is worth most) drawn as a large diamond and named."""
    data = plain(factors).assign(
        marker=[
            "key experience" if flag is True else "factor" for flag in factors["is_key_experience"]
        ]
    )
    base = alt.Chart(data).encode(
        x=alt.X("importance:Q", title="importance", scale=alt.Scale(zero=False)),
        y=alt.Y("experience:Q", title="performance (experience)", scale=alt.Scale(zero=False)),
    )
    points = base.mark_point(filled=True, color="#4c78a8").encode(
        shape=alt.Shape(
            "marker:N",
            scale=alt.Scale(domain=["factor", "key experience"], range=["circle", "diamond"]),
            legend=alt.Legend(title=None, orient="bottom"),
        ),
        size=alt.Size(
            "marker:N",
            scale=alt.Scale(domain=["factor", "key experience"], range=[60, 220]),
            legend=None,
        ),
    )
    labels = base.mark_text(align="left", dx=8, fontSize=11).encode(text="factor:N")
    means = pd.DataFrame(
        {"importance": [factors["importance"].mean()], "experience": [factors["experience"].mean()]}
    )
    v_rule = alt.Chart(means).mark_rule(strokeDash=[3, 3], color="#888").encode(x="importance:Q")
    h_rule = alt.Chart(means).mark_rule(strokeDash=[3, 3], color="#888").encode(y="experience:Q")
    return svg(alt.layer(v_rule, h_rule, points, labels).properties(width=WIDTH, height=220))


def group_lines(data: pd.DataFrame, value: str, group: str, title: str) -> str:
    """One line per group over the months (late vs on-time deliveries, reopened vs not),
    told apart by dash and point shape as well as colour."""
    base = alt.Chart(plain(data)).encode(
        x=alt.X("utcyearmonth(month_start):T", axis=_MONTH_AXIS),
        y=alt.Y(f"{value}:Q", title=title),
        color=alt.Color(f"{group}:N", legend=alt.Legend(title=None, orient="bottom")),
        strokeDash=alt.StrokeDash(f"{group}:N", legend=None),
        shape=alt.Shape(f"{group}:N", legend=None),
    )
    chart = base.mark_line() + base.mark_point(filled=True, size=35)
    return svg(chart.properties(width=WIDTH, height=HEIGHT))


def topic_gaps(topics: pd.DataFrame) -> str:
    """NPS gap (answers naming the topic minus the others) with its 95 % interval."""
    base = alt.Chart(plain(topics)).encode(
        y=alt.Y("topic_label:N", sort=None, title=None),
    )
    whisker = base.mark_rule(color="#555").encode(
        x=alt.X("nps_gap_ci_low:Q", title="NPS gap (points)"), x2="nps_gap_ci_high:Q"
    )
    bar = base.mark_point(shape="diamond", filled=True, size=80, color="#b85c00").encode(
        x="nps_gap:Q"
    )
    zero = alt.Chart(pd.DataFrame({"x": [0]})).mark_rule(color="#888").encode(x="x:Q")
    return svg(alt.layer(zero, whisker, bar).properties(width=WIDTH, height=28 * len(topics)))


def backlog(months: pd.DataFrame) -> str:
    """Open and overdue cases at each month's snapshot: bars, overdue hatched darker."""
    long = plain(months).melt(
        id_vars=["month_start"], value_vars=["open_cases", "overdue_cases"], var_name="cases"
    )
    long["cases"] = long["cases"].map({"open_cases": "open", "overdue_cases": "overdue"})
    chart = (
        alt.Chart(long)
        .mark_bar()
        .encode(
            x=alt.X("utcyearmonth(month_start):T", axis=_MONTH_AXIS),
            xOffset=alt.XOffset("cases:N"),
            y=alt.Y("value:Q", title="cases"),
            color=alt.Color(
                "cases:N",
                scale=alt.Scale(domain=["open", "overdue"], range=["#9ecae9", "#b2182b"]),
                legend=alt.Legend(title=None, orient="bottom"),
            ),
            opacity=alt.Opacity(
                "cases:N", scale=alt.Scale(domain=["open", "overdue"], range=[0.7, 1]), legend=None
            ),
        )
    )
    return svg(chart.properties(width=WIDTH, height=HEIGHT))
