"""The report's Plotly charts, each an HTML <div> that draws itself with the plotly.js bundle
the page embeds once (plotly_js()), so the page works offline."""

import plotly.graph_objects as go
import plotly.offline

_CONFIG = {"displaylogo": False, "responsive": True}
STATUS_COLOURS = {"passed": "#2e7d32", "xfailed": "#6a1b9a", "skipped": "#9e9e9e", "failed": "#c62828",
                  "error": "#ef6c00", "flaky": "#f9a825"}


def plotly_js():
    """plotly.js, to inline once in the page."""
    return plotly.offline.get_plotlyjs()


def run_names(runs):
    """The x-axis name of each run: its start (UTC) and short commit."""
    return [f"{r['started_at'].replace('T', ' ')[:16]} {(r['commit'] or '')[:8]}".strip() for r in runs]


def _div(fig, div_id, height=360, left=40):
    fig.update_layout(height=height, margin=dict(l=left, r=20, t=40, b=40), template="plotly_white",
                      legend=dict(orientation="h", y=-0.2))
    return fig.to_html(full_html=False, include_plotlyjs=False, div_id=div_id, config=_CONFIG)


def wall_time(runs):
    """Bars per run: the CI wall time (where recorded) and Bazel's own time."""
    names = run_names(runs)
    fig = go.Figure([go.Bar(name="CI wall time (s)", x=names, y=[r["wall_seconds"] for r in runs]),
                     go.Bar(name="bazel test (s)", x=names, y=[r["bazel_seconds"] for r in runs])])
    fig.update_layout(barmode="group", title="Time per run")
    return _div(fig, "chart-wall-time")


def case_statuses(runs):
    """Stacked bars per run: how many cases ended in each status."""
    names = run_names(runs)
    fig = go.Figure([go.Bar(name=status, x=names, y=[r["counts"][status] for r in runs], marker_color=colour)
                     for status, colour in STATUS_COLOURS.items()])
    fig.update_layout(barmode="stack", title="Cases per status")
    return _div(fig, "chart-case-statuses")


def slowest_targets(rows):
    """Horizontal bars: the slowest targets' mean duration."""
    fig = go.Figure(go.Bar(x=[r["mean"] for r in rows][::-1], y=[r["label"] for r in rows][::-1], orientation="h"))
    fig.update_layout(title="Slowest targets (mean seconds over the runs)")
    return _div(fig, "chart-slowest-targets", height=max(300, 28 * len(rows) + 120), left=320)


def case_trends(rows, runs, limit=10):
    """Lines: the duration of the `limit` slowest cases, run by run."""
    names = run_names(runs)
    fig = go.Figure([go.Scatter(name=f"{r['case_id']} ({r['label']})", x=names, y=r["durations"],
                                mode="lines+markers", connectgaps=False) for r in rows[:limit]])
    fig.update_layout(title="Duration of the slowest cases per run (s)")
    return _div(fig, "chart-case-trends", height=420)
