"""Commands run on the same event loop as the served app (uvloop)."""

from __future__ import annotations

import asyncio

from common.runtime import run_async


def test_run_async_returns_the_result_and_runs_on_uvloop() -> None:
    async def which_loop() -> str:
        await asyncio.sleep(0)
        return type(asyncio.get_running_loop()).__module__

    assert run_async(which_loop()).startswith("uvloop")
