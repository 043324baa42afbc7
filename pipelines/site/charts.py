"""The site's charts, declared as Vega-Lite specs with Altair and rendered to SVG when the site is built.

Every chart comes with its title, a subtitle saying what is plotted and in which unit, alt text, and
the rows it plots (written beside it as CSV), so a reader can check or reuse the numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

ARCHITECTURES = ("mixture-of-experts", "dense-model", "state-space-model", "transformer-ssm-hybrid")


@dataclass
class Chart:
    slug: str
    title: str
    subtitle: str
    alt: str
    columns: list[str]
    rows: list[tuple]
    spec: dict

    def svg(self) -> str:
        import vl_convert

        return vl_convert.vegalite_to_svg(self.spec)


def _altair():
    """Altair, allowed to inline every point: the charts plot one row per model, and a large atlas has more than Altair's default 5,000."""
    import altair as alt

    alt.data_transformers.disable_max_rows()
    return alt


POINTS = "points"  # the name of every chart's dataset


def _spec(chart, title: str, subtitle: str, columns: list[str], rows: list[tuple], **size) -> dict:
    """The Vega-Lite spec with its rows filled in as a named dataset. Altair sees no rows: it would
    validate and convert every value (20 s for 20,000 models), and no pandas is imported. The specs
    are validated by the tests (test_site.py), not on every build."""
    size = size or {"width": 640, "height": 320}
    spec = chart.properties(title={"text": title, "subtitle": subtitle}, **size).to_dict(validate=False)
    spec["datasets"] = {POINTS: [dict(zip(columns, row, strict=True)) for row in rows]}
    return spec


def _data():
    import altair as alt

    return alt.NamedData(POINTS)


def params_over_time(models: list[dict], memberships: dict[str, set[str]]) -> Chart:
    alt = _altair()

    rows = []
    for m in models:
        if m["kind"] != "model" or m["release_date"] is None or m["params_total"] is None:
            continue
        arch = next((a for a in ARCHITECTURES if a in memberships.get(m["model_id"], set())), "other or unstated")
        rows.append((m["model_id"], m["name"], str(m["release_date"]), "total", m["params_total"], arch))
        if m["params_active"] is not None:
            rows.append((m["model_id"], m["name"], str(m["release_date"]), "active per token", m["params_active"], arch))
    cols = ["model_id", "name", "release_date", "count", "parameters", "architecture"]
    chart = (
        alt.Chart(_data())
        .mark_point(filled=True, opacity=0.7)
        .encode(
            x=alt.X("release_date:T", title="Release date"),
            y=alt.Y("parameters:Q", scale=alt.Scale(type="log"), title="Parameters (log scale)"),
            color=alt.Color("architecture:N", title="Architecture class"),
            shape=alt.Shape("count:N", title="Count"),
            tooltip=["name:N", "release_date:T", "parameters:Q", "count:N"],
        )
    )
    title, sub = "Published parameter counts over time", "Total parameters per model (and active parameters per token for mixture-of-experts models), log scale"
    alt_text = f"Scatter plot of {len(rows)} published parameter counts against release date on a log scale, coloured by architecture class."
    return Chart("params-over-time", title, sub, alt_text, cols, rows, _spec(chart, title, sub, cols, rows))


def context_over_time(models: list[dict]) -> Chart:
    alt = _altair()

    rows = [
        (m["model_id"], m["name"], str(m["release_date"]), m["context_length"])
        for m in models
        if m["kind"] == "model" and m["release_date"] is not None and m["context_length"] is not None
    ]
    cols = ["model_id", "name", "release_date", "context_length"]
    chart = (
        alt.Chart(_data())
        .mark_point(filled=True, opacity=0.7)
        .encode(
            x=alt.X("release_date:T", title="Release date"),
            y=alt.Y("context_length:Q", scale=alt.Scale(type="log"), title="Context window (tokens, log scale)"),
            tooltip=["name:N", "release_date:T", "context_length:Q"],
        )
    )
    title, sub = "Context windows over time", "Maximum tokens a model accepts (input plus output) as published, log scale"
    alt_text = f"Scatter plot of the published context windows of {len(rows)} models against their release dates, on a log scale."
    return Chart("context-over-time", title, sub, alt_text, cols, rows, _spec(chart, title, sub, cols, rows))


def open_weights_per_year(models: list[dict]) -> Chart:
    alt = _altair()

    counts: dict[tuple[int, str], int] = {}
    for m in models:
        if m["kind"] != "model" or m["release_date"] is None or m["open_weights"] is None:
            continue
        key = (m["release_date"].year, "open weights" if m["open_weights"] else "closed weights")
        counts[key] = counts.get(key, 0) + 1
    rows = sorted((y, w, n) for (y, w), n in counts.items())
    cols = ["year", "weights", "models"]
    chart = (
        alt.Chart(_data())
        .mark_bar()
        .encode(x=alt.X("year:O", title="Release year"), y=alt.Y("models:Q", title="Models"), color=alt.Color("weights:N", title="Weights"))
    )
    title, sub = "Open and closed weights per year", "Number of models released each year whose weights can or cannot be downloaded"
    alt_text = "Stacked bar chart of models per release year, split into open and closed weights: " + ", ".join(f"{y} {w} {n}" for y, w, n in rows) + "."
    return Chart("open-weights-per-year", title, sub, alt_text, cols, rows, _spec(chart, title, sub, cols, rows))


def models_per_facet(classes: list[dict], members: dict[str, int]) -> Chart:
    alt = _altair()

    rows = sorted(((c["facet"], c["class_id"], members.get(c["class_id"], 0)) for c in classes), key=lambda r: (r[0], -r[2], r[1]))
    cols = ["facet", "class_id", "models"]
    chart = (
        alt.Chart(_data())
        .mark_bar()
        .encode(
            x=alt.X("models:Q", title="Models (direct members)"),
            y=alt.Y("class_id:N", sort="-x", title=None),
            color=alt.Color("facet:N", title="Facet"),
        )
    )
    title, sub = "Models per class, by facet", "Number of models listed directly in each class (derived size bands included)"
    alt_text = f"Horizontal bar chart of the number of models in each of {len(rows)} classes, coloured by taxonomy facet."
    spec = _spec(chart, title, sub, cols, rows, width=640, height=max(320, 12 * len(rows)))
    return Chart("models-per-class", title, sub, alt_text, cols, rows, spec)


def _members_per_year(class_id: str, members: list[dict]) -> list[tuple[int, int]]:
    counts: dict[int, int] = {}
    for m in members:
        if m["release_date"] is not None:
            counts[m["release_date"].year] = counts.get(m["release_date"].year, 0) + 1
    return sorted(counts.items())


class ClassChart:
    """The members-per-year chart of a class page: declared once with Altair, compiled to Vega once, then
    filled with each class's rows (compiling a Vega-Lite spec per class page would cost as much again)."""

    columns = ["year", "models"]

    def __init__(self):
        alt = _altair()

        self.name = "members"
        base = alt.Chart(alt.NamedData(self.name)).mark_bar().encode(x=alt.X("year:O", title="Release year"), y=alt.Y("models:Q", title="Models"))
        # no title inside the SVG: the page's caption carries it, and each text line costs the renderer
        # milliseconds per class page
        spec = base.properties(width=480, height=200).to_dict(validate=False)  # the specs are validated by the tests (test_site.py), not on every build
        self.vega = None
        self.spec = spec

    def chart(self, class_id: str, members: list[dict]) -> Chart:
        rows = _members_per_year(class_id, members)
        title, sub = f"Members of {class_id} by release year", "Number of member models (including those of subclasses) released each year"
        alt_text = f"Bar chart of the members of {class_id} per release year: " + (", ".join(f"{y}: {n}" for y, n in rows) or "no dated members") + "."
        spec = {**self.spec, "datasets": {self.name: [{"year": y, "models": n} for y, n in rows]}}
        return _CompiledChart(f"class-{class_id}", title, sub, alt_text, self.columns, rows, spec, self)


class _CompiledChart(Chart):
    def __init__(self, slug, title, subtitle, alt, columns, rows, spec, owner: ClassChart):
        super().__init__(slug, title, subtitle, alt, columns, rows, spec)
        self.owner = owner

    def svg(self) -> str:
        import copy

        import vl_convert

        if self.owner.vega is None:
            self.owner.vega = vl_convert.vegalite_to_vega({**self.owner.spec, "datasets": {self.owner.name: []}})
        vega = copy.deepcopy(self.owner.vega)
        for d in vega.get("data", []):
            if d.get("name") == self.owner.name:
                d["values"] = self.spec["datasets"][self.owner.name]
        return vl_convert.vega_to_svg(vega)
