"""The nightly report of one scope (issue 13): a static HTML page a store manager, a
regional manager or HQ opens from disk.

It reads only the scope's own extract (``scopes/<unit>/cx.duckdb``, or one built from the
archived Parquet files), so it can show nothing
the extract does not hold. The page is self-contained: styles inline, charts as static SVG
(``report_charts``), no script, no font or image from anywhere, and a Content-Security-Policy
that forbids the browser to load anything, so it opens the same on a laptop, on a phone and
with no network. The same data gives the same bytes (no clock in the page).

Sections: headline KPIs (value, target, status in words and symbol, change, sample), their
monthly trends with 95 % band and target, the KPI tree, the factor quadrant with the key
experience, delivery and ticket effects, top topics with their NPS gap, the case backlog,
and links down to the scopes inside this one (and up to the one above).
"""

from __future__ import annotations

import json
import tempfile
from html import escape
from pathlib import Path

import duckdb
import pandas as pd

from cxkpi import package_macros, report_charts, scopes

STATUS = {  # status -> (symbol, words): never colour alone
    "on_track": ("✓", "on track"),
    "at_risk": ("!", "at risk"),
    "off_track": ("✗", "off track"),
    "no_target": ("–", "no target"),
    "not_reliable": ("?", "too few answers"),
}
UNIT_SUFFIX = {"percent": " %", "points": " pts", "days": " days", "hours": " h"}
TREND_MONTHS = 12
_LOW_N = ' <abbr title="fewer answers than the minimum sample">low n</abbr>'
TOP_TOPICS = 5


def format_value(value, unit: str | None) -> str:
    """A value with its unit, as the report and its tests show it."""
    if value is None or pd.isna(value):
        return "–"
    if unit == "count":
        return f"{value:,.0f}"
    if unit == "currency":
        return f"{value:,.2f}"
    return f"{value:,.1f}{UNIT_SUFFIX.get(unit or '', '')}"


def _true(flag) -> bool:
    """A nullable flag: unknown counts as no."""
    return False if flag is None or pd.isna(flag) else bool(flag)


def _frame(con, sql: str, *params) -> pd.DataFrame:
    """Rows of a query, every missing value as None (not NaN, NaT or pd.NA)."""
    frame = con.execute(sql, list(params)).df().astype(object)
    return frame.where(frame.notna(), None)


class _Page:
    def __init__(self, title: str):
        self.title = title
        self.parts: list[str] = []
        self.charts = 0

    def add(self, html: str) -> None:
        self.parts.append(html)

    def figure(self, name: str, caption: str, drawn: str) -> None:
        self.charts += 1
        self.add(
            f'<figure class="chart" data-chart="{escape(name)}">{drawn}'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )

    def html(self) -> str:
        return _TEMPLATE.format(
            title=escape(self.title), body="\n".join(self.parts), charts=self.charts
        )


def _status(status: str | None) -> str:
    symbol, words = STATUS.get(status or "", ("–", status or "no value"))
    return f'<span class="status {escape(status or "none")}">{symbol} {escape(words)}</span>'


def _change(change, significant) -> str:
    if change is None or pd.isna(change):
        return ""
    arrow = "▲" if change > 0 else "▼" if change < 0 else "▶"
    note = "" if _true(significant) else " (within noise)"
    return f'<span class="change">{arrow} {change:+.1f}{note}</span>'


def _headline(level: str) -> str:
    """kpi_values' headline slice (month, no breakdown) at one unit of ``level``."""
    return package_macros.headline_slice(level) + " and org_unit_id = ?"


def _latest(con, unit: str, level: str) -> pd.DataFrame:
    return _frame(
        con,
        f"""
        select c.kpi_id, c.kind, c.kpi_label, c.kpi_level, c.unit, c.parents, c.target,
               v.period_start, v.value, v.status, v.n, v.min_sample, v.is_reliable,
               v.change, v.change_is_significant
        from kpi_catalog c
        left join (
            select * from kpi_values where {_headline(level)}
            qualify row_number() over (partition by kpi_id order by period_start desc) = 1
        ) v using (kpi_id)
        where c.kind in ('goal', 'kpi')
        order by c.kpi_id
        """,
        unit,
    )


def _headlines(page: _Page, latest: pd.DataFrame) -> pd.DataFrame:
    outcomes = latest[(latest["kpi_level"] == "outcome") & latest["value"].notna()]
    cards = []
    for kpi in outcomes.itertuples():
        unreliable = not _true(kpi.is_reliable)
        sample = f"n = {kpi.n:,.0f}" + (
            f" &lt; {kpi.min_sample:,.0f}: not reliable" if unreliable else ""
        )
        target = (
            f"target {format_value(kpi.target, kpi.unit)}" if pd.notna(kpi.target) else "no target"
        )
        cards.append(
            f'<div class="card{" unreliable" if unreliable else ""}" '
            f'data-kpi-id="{escape(kpi.kpi_id)}" data-value="{kpi.value!r}">'
            f'<div class="label">{escape(kpi.kpi_label)}</div>'
            f'<div class="value">{format_value(kpi.value, kpi.unit)}'
            f"{_LOW_N if unreliable else ''}"
            f"</div><div>{_status(kpi.status)} {_change(kpi.change, kpi.change_is_significant)}"
            f'</div><div class="meta">{kpi.period_start:%B %Y} · {target} · {sample}</div></div>'
        )
    page.add('<h2 id="headline">Headline KPIs</h2><div class="cards">' + "".join(cards) + "</div>")
    return outcomes


def _trends(page: _Page, con, unit: str, level: str, outcomes: pd.DataFrame) -> None:
    page.add('<h2 id="trends">Monthly trends</h2><div class="grid">')
    for kpi in outcomes.itertuples():
        months = _frame(
            con,
            f"""select period_start, value, ci_low, ci_high, is_reliable from kpi_values
            where {_headline(level)} and kpi_id = ?
            order by period_start desc limit {TREND_MONTHS}""",
            unit,
            kpi.kpi_id,
        )
        target = float(kpi.target) if pd.notna(kpi.target) else None
        page.figure(
            f"trend:{kpi.kpi_id}",
            f"{kpi.kpi_label}: monthly value, 95 % band, dashed line = target",
            report_charts.kpi_trend(months, target, kpi.unit or ""),
        )
    page.add("</div>")


def _tree(page: _Page, latest: pd.DataFrame) -> None:
    children: dict[str, list] = {}
    for kpi in latest.itertuples():
        for parent in json.loads(kpi.parents or "[]"):
            children.setdefault(parent["id"], []).append(kpi)
    seen: set[str] = set()

    def node(kpi, depth: int) -> str:
        if kpi.kpi_id in seen or depth > 8:
            return ""
        seen.add(kpi.kpi_id)
        below = "".join(node(k, depth + 1) for k in children.get(kpi.kpi_id, []))
        value = format_value(kpi.value, kpi.unit)
        mark = "" if _true(kpi.is_reliable) or pd.isna(kpi.value) else _LOW_N
        return (
            f'<li><span class="name">{escape(kpi.kpi_label)}</span> '
            f"<b>{value}</b>{mark} {_status(kpi.status)} "
            f"{_change(kpi.change, kpi.change_is_significant)}"
            + (f"<ul>{below}</ul>" if below else "")
            + "</li>"
        )

    goals = latest[latest["kind"] == "goal"]
    items = "".join(node(goal, 0) for goal in goals.itertuples())
    page.add(f'<h2 id="tree">KPI tree</h2><ul class="tree">{items}</ul>')


def _table(frame: pd.DataFrame, columns: dict[str, str]) -> str:
    head = "".join(f"<th>{escape(title)}</th>" for title in columns.values())
    rows = "".join(
        "<tr>" + "".join(f"<td>{escape(str(row[c]))}</td>" for c in columns) + "</tr>"
        for _, row in frame.iterrows()
    )
    return f'<div class="scroll"><table><tr>{head}</tr>{rows}</table></div>'


def _factors(page: _Page, con, unit: str) -> None:
    factors = _frame(
        con,
        """select factor, importance, experience, expectation, satisfaction_gap, quadrant,
                  is_key_experience, n, is_reliable
        from fct_factor_gaps where org_unit_id = ?
          and period_start = (select max(period_start) from fct_factor_gaps where org_unit_id = ?)
        order by gap_rank""",
        unit,
        unit,
    )
    page.add('<h2 id="factors">Factors: importance × performance</h2>')
    if factors.empty:
        page.add("<p>No factor ratings in this scope.</p>")
        return
    page.figure(
        "factor_quadrant",
        "Each factor's importance and rated experience; dashed lines at the means; "
        "the diamond is the key experience",
        report_charts.factor_quadrant(factors),
    )
    shown = factors.assign(
        experience=factors["experience"].map("{:.2f}".format),
        satisfaction_gap=factors["satisfaction_gap"].map("{:+.2f}".format),
        key=factors["is_key_experience"].map({True: "key experience", False: ""}),
        sample=[
            f"{n}" + ("" if _true(ok) else " (low n)")
            for n, ok in zip(factors["n"], factors["is_reliable"], strict=True)
        ],
    )
    page.add(
        _table(
            shown,
            {
                "factor": "factor",
                "experience": "experience",
                "satisfaction_gap": "gap to expectation",
                "quadrant": "quadrant",
                "key": "",
                "sample": "n",
            },
        )
    )


def _last_months(con, unit: str, table: str, group: str, measure: str) -> pd.DataFrame:
    """A monthly mart's ``measure`` per ``group`` at the unit, its last TREND_MONTHS months."""
    return _frame(
        con,
        f"""select month_start, {group}, {measure} from {table}
        where org_unit_id = ? and month_start >= (select max(month_start) from {table}
          where org_unit_id = ?) - interval {TREND_MONTHS - 1} month
        order by month_start""",
        unit,
        unit,
    )


def _effects(page: _Page, con, unit: str) -> None:
    page.add('<h2 id="effects">Deliveries and tickets</h2><div class="grid">')
    delivery = _last_months(
        con, unit, "fct_experience_by_delivery", "delivery_punctuality", "nps_points"
    )
    if not delivery.empty:
        page.figure(
            "delivery",
            "NPS after late and after on-time deliveries, by month",
            report_charts.group_lines(delivery, "nps_points", "delivery_punctuality", "NPS"),
        )
    tickets = _last_months(con, unit, "fct_ticket_experience", "ticket_group", "csat_top2_box")
    if not tickets.empty:
        page.figure(
            "tickets",
            "CSAT (top-2 box, %) of reopened and not reopened tickets, by month",
            report_charts.group_lines(tickets, "csat_top2_box", "ticket_group", "CSAT top-2 %"),
        )
    page.add("</div>")
    if delivery.empty and tickets.empty:
        page.add("<p>No deliveries or tickets with answers in this scope.</p>")


def _topics(page: _Page, con, unit: str) -> None:
    topics = _frame(
        con,
        f"""select coalesce(d.topic_label, t.topic_id) as topic_label, t.topic_share,
                  t.topic_verbatims, t.nps_gap, t.nps_gap_ci_low, t.nps_gap_ci_high,
                  t.is_reliable, t.month_start
        from fct_topic_trends t left join dim_topics d using (topic_id)
        where t.org_unit_id = ? and t.topic_verbatims > 0 and t.month_start =
          (select max(month_start) from fct_topic_trends where org_unit_id = ?)
        order by t.topic_share desc, topic_label limit {TOP_TOPICS}""",
        unit,
        unit,
    )
    page.add('<h2 id="topics">What customers talk about</h2>')
    if topics.empty:
        page.add("<p>No comments with a known topic in the latest month.</p>")
        return
    drawable = topics.dropna(subset=["nps_gap", "nps_gap_ci_low", "nps_gap_ci_high"])
    if not drawable.empty:
        page.figure(
            "topics",
            f"NPS gap of answers naming each topic vs the others, "
            f"{topics['month_start'].iloc[0]:%B %Y}, with 95 % interval",
            report_charts.topic_gaps(drawable),
        )
    shown = topics.assign(
        share=topics["topic_share"].map(lambda v: format_value(100 * v, "percent")),
        gap=[
            format_value(g, "points") + ("" if _true(ok) else " (low n)")
            for g, ok in zip(topics["nps_gap"], topics["is_reliable"], strict=True)
        ],
    )
    page.add(
        _table(
            shown,
            {
                "topic_label": "topic",
                "share": "share of comments",
                "topic_verbatims": "comments",
                "gap": "NPS gap",
            },
        )
    )


def _cases(page: _Page, con, unit: str) -> None:
    months = _frame(
        con,
        f"""select month_start, open_cases, overdue_cases from fct_case_backlog
        where org_unit_id = ? order by month_start desc limit {TREND_MONTHS}""",
        unit,
    )
    page.add('<h2 id="cases">Follow-up cases</h2>')
    if months.empty:
        page.add("<p>No follow-up cases are owned in this scope.</p>")
        return
    latest = months.iloc[0]
    page.add(
        f'<div class="cards"><div class="card" data-cases="open" data-value="{latest.open_cases}">'
        f'<div class="label">Open cases</div><div class="value">{latest.open_cases:,}</div>'
        f'<div class="meta">at the end of {latest.month_start:%B %Y}</div></div>'
        f'<div class="card" data-cases="overdue" data-value="{latest.overdue_cases}">'
        f'<div class="label">Overdue cases</div><div class="value">{latest.overdue_cases:,}</div>'
        f'<div class="meta">past their SLA, still open</div></div></div>'
    )
    page.figure(
        "backlog", "Open and overdue cases at each month's end", report_charts.backlog(months)
    )


def _links(page: _Page, con, scope: dict) -> None:
    names = dict(con.execute("select org_unit_id, org_unit_name from dim_org_units").fetchall())
    children = [c for c in (scope["child_scope_ids"] or "").split(",") if c]
    links = []
    if scope["parent_scope_id"]:
        parent = scope["parent_scope_id"]
        name = escape(names.get(parent, parent))
        links.append(f'<a class="up" href="../{escape(parent)}/report.html">▲ up: {name}</a>')
    if children:
        items = "".join(
            f'<li><a href="../{escape(c)}/report.html">{escape(names.get(c, c))}</a></li>'
            for c in children
        )
        links.append(f'<ul class="children">{items}</ul>')
    if links:
        page.add('<h2 id="drill">Drill down</h2><nav>' + "".join(links) + "</nav>")


def build_report(extract: Path) -> str:
    """The report's HTML for the scope extract at ``extract``."""
    con = duckdb.connect(str(extract), read_only=True)
    try:
        scope = _frame(con, "select * from extract_scope").iloc[0].to_dict()
        unit = scope["scope_unit_id"]
        through = con.execute(
            "select max(period_start) from kpi_values where period_grain = 'day' "
            "and org_unit_id = ?",
            [unit],
        ).fetchone()
        title = f"{scope['scope_unit_name']} ({scope['scope_level']})"
        page = _Page(f"CX report: {title}")
        ancestors = [a for a in (scope["aggregate_unit_ids"] or "").split(",") if a]
        names = dict(
            con.execute(
                "select org_unit_id, org_unit_name || ' (' || org_level || ')' from dim_org_units"
            ).fetchall()
        )
        compared = (
            "; to compare with, the aggregates of "
            + ", ".join(names.get(a) or a for a in ancestors)
            if ancestors
            else ""
        )
        page.add(
            f"<header><h1>{escape(title)}</h1><p>Data through "
            f"<b>{through[0] if through and through[0] else '–'}</b> · "
            f"{scope['subtree_units']} units in this scope{escape(compared)}."
            "</p></header>"
        )
        latest = _latest(con, unit, scope["scope_level"])
        outcomes = _headlines(page, latest)
        _trends(page, con, unit, scope["scope_level"], outcomes)
        _tree(page, latest)
        _factors(page, con, unit)
        _effects(page, con, unit)
        _topics(page, con, unit)
        _cases(page, con, unit)
        _links(page, con, scope)
        return page.html()
    finally:
        con.close()


def render_report(extract: Path, out: Path) -> None:
    """Write the report of the scope extract ``extract`` to ``out``."""
    out.write_text(build_report(extract), encoding="utf-8")


def regenerate(settings, version: int | None, scope: str | None, out: Path) -> list[Path]:
    """Draw the reports of a published version's scopes again from its archived extracts
    (``cxkpi report``), into ``out/<unit>/report.html`` so drill-down links still work.
    Returns the files written."""
    from cxkpi.errors import CxkpiError
    from cxkpi.published_folder import current_manifest, verify_version

    current = current_manifest(settings.published_dir)
    if current is None:
        raise CxkpiError(f"nothing is published at {settings.published_dir}: run `cxkpi run`")
    version = version or current["version"]
    manifest = verify_version(settings, version)  # a changed extract is refused
    units = sorted(manifest.get("scopes") or {})
    if not units:
        raise CxkpiError(
            f"version {version} has no scopes: declare them in {settings.access_file} "
            "(docs/bi.md, Scopes)"
        )
    if scope is not None and scope not in units:
        raise CxkpiError(f"version {version} has no scope {scope!r}; its scopes: {units}")
    archive = settings.published_dir / "versions" / f"v{version:06d}" / scopes.SCOPES
    written = []
    with tempfile.TemporaryDirectory(prefix="cxkpi-report-") as scratch:
        for unit in [scope] if scope else units:
            extract = Path(scratch) / f"{unit}.duckdb"
            scopes.extract_from_parquet(archive / unit, extract)
            target = out / unit / scopes.REPORT_FILE
            target.parent.mkdir(parents=True, exist_ok=True)
            render_report(extract, target)
            written.append(target)
    return written


_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy"
 content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>{title}</title>
<style>
body {{ font-family: system-ui, -apple-system, 'Segoe UI', Roboto, sans-serif; margin: 0 auto;
  max-width: 1100px; padding: 0 16px 48px; color: #1d1d1f; line-height: 1.4; }}
h1 {{ font-size: 1.6rem; margin-bottom: 4px; }} h2 {{ margin-top: 2rem; font-size: 1.2rem;
  border-bottom: 1px solid #ddd; padding-bottom: 4px; }}
.cards {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(220px, 1fr)); gap: 12px; }}
.card {{ border: 1px solid #ccc; border-radius: 8px; padding: 10px 12px; }}
.card.unreliable {{ border-style: dashed; background: #f6f6f6; }}
.card .label {{ font-size: .9rem; color: #444; }}
.card .value {{ font-size: 1.6rem; font-weight: 600; }}
.meta {{ font-size: .8rem; color: #555; }}
.status {{ font-size: .85rem; padding: 1px 6px; border-radius: 4px; white-space: nowrap; }}
.status.on_track {{ background: #dff0d8; }} .status.at_risk {{ background: #fcf0cf; }}
.status.off_track {{ background: #f6d5d5; }} .status.no_target, .status.not_reliable,
.status.none {{ background: #eee; }}
.change {{ font-size: .85rem; color: #333; white-space: nowrap; }}
.grid {{ display: grid; grid-template-columns: repeat(auto-fill, minmax(320px, 1fr)); gap: 16px; }}
figure {{ margin: 8px 0; }} figure svg {{ max-width: 100%; height: auto; }}
figcaption {{ font-size: .8rem; color: #555; }}
ul.tree, ul.tree ul {{ list-style: none; padding-left: 1.1rem; border-left: 1px solid #ddd; }}
ul.tree li {{ margin: 3px 0; }}
.scroll {{ overflow-x: auto; }} table {{ border-collapse: collapse; font-size: .85rem; }}
th, td {{ border-bottom: 1px solid #e5e5e5; padding: 4px 8px; text-align: left; }}
abbr {{ font-size: .75rem; background: #eee; padding: 0 4px; border-radius: 3px;
  text-decoration: none; }}
nav a {{ display: inline-block; margin: 4px 0; }}
</style></head>
<body data-charts="{charts}">
{body}
</body></html>
"""
