"""The metrics catalogue is the one list: the per-region object, the response schema, the annual report and
the dashboard's labels all follow it, and a key counted outside the vocabulary is shown, never dropped."""

from __future__ import annotations

from datetime import UTC, datetime

from fakes import InMemoryProjectionWriter
from reporting.api.reports import columns, to_csv
from reporting.api.schemas import RegionMetrics
from reporting.catalogue import METRICS, Metric, keys_of, labels
from reporting.projections.apply import apply_changes
from reporting.projections.attribution import OPEN_POSTS
from reporting.projections.changes import decode_change
from reporting.read.queries import RegionFigures, metrics_object
from support import agreement_message, event_data, event_message, organization_message, person_message


def test_the_figures_object_and_the_schema_have_exactly_the_catalogue_metrics() -> None:
    obj = metrics_object("all", 2025, datetime.now(UTC), None)
    for section in ("partners", "events", "talent"):
        declared = [m.name for m in METRICS if m.section == section]
        assert list(obj[section]) == declared
        schema_fields = RegionMetrics.model_fields[section].annotation.model_fields  # type: ignore[union-attr]
        assert list(schema_fields) == declared
    RegionMetrics.model_validate(obj)  # the object the API answers is valid against the schema it documents


def test_every_metric_reads_its_counter() -> None:
    figures = RegionFigures(agreements_active=4, agreements_expiring=1, countries={"events": 3, "partners": 2})
    for index, m in enumerate(METRICS):
        if m.computed == "counter" and not m.vocabulary:
            figures.values[m.counter] = index + 100
    figures.values["events.by_type.forum"] = 7
    obj = metrics_object("all", 2025, datetime.now(UTC), figures)
    for index, m in enumerate(METRICS):
        if m.computed == "counter" and not m.vocabulary:
            assert obj[m.section][m.name] == index + 100, m.key
    assert obj["events"]["by_type"]["forum"] == 7 and obj["events"]["by_type"]["conference"] == 0
    assert obj["events"]["countries"] == 3 and obj["partners"]["countries"] == 2
    assert obj["partners"]["agreements_active"] == 4 and obj["partners"]["agreements_expiring_90d"] == 1


def test_a_type_counted_before_its_label_arrives_still_has_its_column() -> None:
    figures = RegionFigures()
    figures.values["events.by_type.study_tour"] = 2
    obj = metrics_object("all", 2025, datetime.now(UTC), figures)
    assert obj["events"]["by_type"]["study_tour"] == 2
    keys = [key for key, _zh, _en in columns([obj])]
    assert "events.by_type.study_tour" in keys
    assert keys.index("events.by_type.study_tour") == keys.index(f"events.by_type.{keys_of('event_types')[-1]}") + 1
    header, row = to_csv([obj]).decode("utf-8-sig").splitlines()[:2]
    assert "活动：study_tour Events: study_tour" in header
    assert row.split(",")[keys.index("events.by_type.study_tour")] == "2"


def test_the_dashboard_labels_come_from_the_catalogue_and_the_vocabularies() -> None:
    served = labels()
    assert set(served["metrics"]) == {m.key for m in METRICS}
    assert served["metrics"]["events.countries"] == {"zh": "涉及国家", "en": "Countries reached", "unit": "countries"}
    assert list(served["event_types"]) == list(keys_of("event_types"))
    assert served["roles"]["secretary_general"]["zh"] == "秘书长"
    assert set(served) == {"metrics", "event_types", "groups", "roles", "dashboard"}


def test_the_dashboard_shows_what_the_catalogue_marks_and_every_breakdown() -> None:
    layout = labels()["dashboard"]
    assert layout["table"] == [m.key for m in sorted(METRICS, key=_page_order) if m.dashboard]
    assert set(layout["cards"]) <= set(layout["table"])
    assert {"events.count", "partners.agreements_active", "talent.persons"} <= set(layout["cards"])
    assert "events.flagship" not in layout["table"]  # not marked: reported, not on the dashboard
    assert layout["breakdowns"] == [
        ["events.by_type", "event_types"],
        ["talent.by_group", "groups"],
        ["talent.posts_by_role", "roles"],
    ]


def _page_order(m: Metric) -> int:
    return ("events", "partners", "talent").index(m.section)


async def test_every_counter_the_projections_write_is_declared_in_the_catalogue() -> None:
    """A counter the projections write but no metric declares would be stored and never shown."""
    store = InMemoryProjectionWriter()
    posts = [
        {"organization": "IUPAP", "organization_country": "FR", "role": "member", "start_date": "2020-01-01"},
        {"organization": "IAU", "role": "president", "start_date": "2019-01-01", "end_date": "2021-06-30"},
    ]
    messages = [
        event_message(event_data(id="e1", host_province="440000", countries=["DE"], flagship=True, papers=3)),
        organization_message("o1", "DE"),
        agreement_message("a1", ["o1"], flagship=True),
        person_message("p1", reserve=True, groups=("young_scientist", "expert"), posts=posts),
    ]
    changes = [decode_change(m) for m in messages]
    await apply_changes(store, 1, [c for c in changes if c is not None])
    written = {metric for (_region, _year, metric) in store.figures()}
    assert len(written) >= 12  # every aggregate kind wrote its counters

    def declared(metric: str) -> bool:
        if metric.startswith(OPEN_POSTS):  # open posts: counted into talent.posts* for each year they last
            metric = metric.replace(OPEN_POSTS, "talent.posts", 1)
        return any(m.counter == metric if not m.vocabulary else metric.startswith(m.counter) for m in METRICS)

    assert sorted(m for m in written if not declared(m)) == []
    assert declared("talent.posts_open_by_role.member") and not declared("events.undeclared")
