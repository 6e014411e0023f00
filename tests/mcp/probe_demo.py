"""The Python MCP SDK calls `probe_endpoint`, `plan_probe` and `audit_service` with
`base_url` on the running demo service.

Usage: python probe_demo.py RACECHECK_BINARY DEMO_URL
"""

import asyncio
import os
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

            # A plan generated from a finding, without running it; then the whole audit, proven.
            service = os.path.join(os.path.dirname(__file__), "..", "..", "tools", "demo-service")
            res = await session.call_tool("audit_service", {"path": service, "limit": 50})
            incr = next(f for f in res.structured_content["findings"]
                        if f["rule"] == "RC103" and f.get("operation") == "POST /counters/{id}/incr")
            res = await session.call_tool("plan_probe", {"path": service, "base_url": demo,
                                                         "id": incr["fingerprint"]})
            assert not res.is_error, res.content[0].text
            sc = res.structured_content
            assert sc["status"] == "ready" and sc["plan"]["mode"] == "lost-update", sc
            assert sc["plan"]["target"]["url"].startswith(demo + "/counters/"), sc["plan"]
            assert sc["plan"]["observe"]["pointer"] == "/value", sc["plan"]
            res = await session.call_tool("plan_probe", {"path": service, "base_url": demo,
                                                         "id": "RC103-0000000000000000"})
            assert res.is_error and "RC103-0000000000000000" in res.content[0].text
            res = await session.call_tool("plan_probe", {"path": service, "base_url": "http://example.com",
                                                         "id": incr["fingerprint"]})
            assert res.is_error, "a host the operator did not allow is refused"
            updates.clear()
            res = await session.call_tool("audit_service", {"path": service, "base_url": demo},
                                          progress_callback=on_progress)
            assert not res.is_error, res.content[0].text
            # Progress as each probe starts, counting up to the number of findings.
            done = [u[0] for u in updates]
            assert done and done == sorted(done) and all(u[1] >= u[0] for u in updates), updates
            assert all(u[2].startswith("probing http://") for u in updates), updates
            findings = res.structured_content["findings"]
            # The rest of the same result, page by page: its verdicts, with no probe sent again.
            pages = 1
            updates.clear()
            while res.structured_content.get("next_cursor"):
                res = await session.call_tool("audit_service", {
                    "path": service, "base_url": demo,
                    "cursor": res.structured_content["next_cursor"]},
                    progress_callback=on_progress)
                assert not res.is_error, res.content[0].text
                findings += res.structured_content["findings"]
                pages += 1
            assert pages > 1 and not updates, (pages, updates)
            proofs = {(f["rule"], f.get("operation")): f.get("proof", {}).get("status")
                      for f in findings}
            assert proofs[("RC103", "POST /counters/{id}/incr")] == "confirmed", proofs
            assert proofs[("RC102", "POST /coupons/{code}/redeem")] == "confirmed", proofs
            assert proofs[("RC104", "POST /transfers")] == "untested", proofs
            # A correct twin's contract finding is planned from its handler and shows nothing.
            assert proofs[("RC204", "POST /counters/{id}/incr-atomic")] == "not-reproduced", proofs
            print("9 passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
