"""The partners database schema (organizations, agreements and memberships come with their issue)."""

from common.db import new_metadata
from common.inbox import inbox_table
from common.outbox import outbox_table

metadata = new_metadata()
outbox = outbox_table(metadata)
inbox = inbox_table(metadata)
