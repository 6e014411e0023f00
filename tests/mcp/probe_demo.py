"""The Python MCP SDK calls `probe_endpoint` on the running demo service.

Usage: python probe_demo.py RACECHECK_BINARY DEMO_URL
"""

import asyncio
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


async def main(binary: str, demo: str) -> None:
    params = StdioServerParameters(command=binary, args=["mcp"])
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            updates = []

            async def on_progress(progress, total, message):
                updates.append((progress, total, message))

            plan = {"target": {"method": "POST", "url": demo + "/counters/mcp/incr", "body": {"by": 1}},
                    "observe": {"url": demo + "/counters/mcp", "pointer": "/value"},
                    "mode": "lost-update", "concurrency": 8, "rounds": 2}
            res = await session.call_tool("probe_endpoint", plan, progress_callback=on_progress)
            assert not res.is_error, res.content[0].text
            rules = [f["rule"] for f in res.structured_content["findings"]]
            assert rules == ["RC401"], res.structured_content
            assert [u[0] for u in updates] == [1, 2], updates
            print("verdict:", res.structured_content["probe"]["verdict"])
            print("4 passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
