from common.migrations import run_env
from events.adapters.tables import metadata

run_env(metadata)
