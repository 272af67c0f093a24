"""The reporting database schema.

Every projection table carries `gen`, the generation it belongs to: `reporting rebuild` fills a fresh
generation from the topics while the live one keeps answering, then flips `rm_generation.current` in one
transaction. Readers always select `gen = (SELECT current FROM rm_generation)`.
"""

from common.db import new_metadata
from common.inbox import inbox_table
from common.outbox import outbox_table
from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Index, Integer, String, Table, Text

metadata = new_metadata()
outbox = outbox_table(metadata)  # unused (reporting publishes nothing) but created by the first migration
inbox = inbox_table(metadata)

generation = Table(
    "rm_generation",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("current", Integer, nullable=False),
    Column("next", Integer, nullable=False),
    Column("swapped_at", DateTime(timezone=True), nullable=True),
)

# Additive counters per (region, year, metric); year 0 = all years. Region codes are the catalogue's plus
# `body:<kind>:<code>` rows for the reporting bodies.
metrics = Table(
    "rm_metrics",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("metric", String(96), primary_key=True),
    Column("value", BigInteger, nullable=False),
)

# How many aggregates involve a country in a region and year: a region's `countries` is the number of
# rows with n > 0, so removals are exact.
country_refs = Table(
    "rm_country_refs",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("year", Integer, primary_key=True),
    Column("country", String(2), primary_key=True),
    Column("n", Integer, nullable=False),
)

# The last applied version of every aggregate and its contribution (what to subtract on the next change).
aggregates = Table(
    "rm_aggregates",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("facts", Text, nullable=True),
    Column("contribution", Text, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=True),
)

# Events, the high-volume kind, keep their contribution as typed columns (`EventFacts` in
# projections/event_facts.py) instead of expanded blocks; `countries` is JSON text mapping each partner
# country to the world regions it counted in (`{"DE":["group:eu","m49:150"]}`, "" for none).
event_facts = Table(
    "rm_event_facts",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("id", String(64), primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("year", Integer, nullable=False),
    Column("home", String(64), nullable=False),
    Column("countries", Text, nullable=False),
    Column("body", String(64), nullable=False),
    Column("type", String(32), nullable=False),
    Column("participants", BigInteger, nullable=False),
    Column("foreign_participants", BigInteger, nullable=False),
    Column("papers", BigInteger, nullable=False),
    Column("flagship", Boolean, nullable=False),
)

# Agreements per region, so active / expiring figures are computed against today's date when read.
agreement_regions = Table(
    "rm_agreement_regions",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("agreement_id", String(64), primary_key=True),
    Column("region", String(64), primary_key=True),
    Column("signed_year", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("expires_on", Date, nullable=True),
    Index("ix_rm_agreement_regions_region", "gen", "region"),
)

# Which agreements name which organization: an organization's country change re-attributes them.
agreement_orgs = Table(
    "rm_agreement_orgs",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("org_id", String(64), primary_key=True),
    Column("agreement_id", String(64), primary_key=True),
)

# Reporting bodies seen (provinces, societies, HQ) and when their records last changed.
bodies = Table(
    "rm_bodies",
    metadata,
    Column("gen", Integer, primary_key=True),
    Column("kind", String(16), primary_key=True),
    Column("code", String(64), primary_key=True),
    Column("last_change", DateTime(timezone=True), nullable=False),
)
