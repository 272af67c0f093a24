from common.migrations import run_env
from talent.adapters.tables import metadata

run_env(metadata)
