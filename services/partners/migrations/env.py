from common.migrations import run_env
from partners.adapters.tables import metadata

run_env(metadata)
