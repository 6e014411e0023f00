"""An independent MCP client (the Python `mcp` SDK) drives `racecheck mcp` over stdio.

Usage: python client_check.py RACECHECK_BINARY REPO_ROOT
Exits non-zero on the first failed check; prints "N passed, 0 failed" at the end.
"""

import asyncio
import json
import os
import sys
import urllib.request

import anyio

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

PASSED = 0


def check(cond, what):
    global PASSED
    if not cond:
        print(f"FAILED: {what}", file=sys.stderr)
        sys.exit(1)
    PASSED += 1


async def main(binary: str, root: str, racy: str) -> None:
    params = StdioServerParameters(command=binary, args=["mcp"], env={"RACECHECK_LOG": "info"})
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            check(init.server_info.name == "racecheck", f"server name {init.server_info.name}")
            check(init.server_info.version, "server version is set")

            tools = {t.name: t for t in (await session.list_tools()).tools}
            check({"analyze_source", "explain_rule", "validate_openapi", "probe_endpoint", "audit_service", "suggest_fix"} <= set(tools), f"tools {sorted(tools)}")
            check(tools["validate_openapi"].output_schema.get("type") == "object", "validate_openapi has an output schema")
            analyze = tools["analyze_source"]
            check(analyze.output_schema and analyze.output_schema.get("type") == "object",
                  "analyze_source has an object output schema")
            props = analyze.input_schema.get("properties", {})
            check({"path", "code", "rules"} <= set(props), f"input properties {sorted(props)}")
            check(not analyze.input_schema.get("required"), "path/code/rules are optional")
            check(all(not isinstance(p.get("type"), list) for p in props.values()),
                  "no type arrays in the input schema")
            check("when" in analyze.description.lower() or "call it" in analyze.description.lower(),
                  "description says when to call the tool")

            # A crate directory: the racy handlers are found, with routes and fixes.
            crate = os.path.join(root, "tests", "fixtures", "crate")
            res = await session.call_tool("analyze_source", {"path": crate, "detail": True})
            check(not res.is_error, "analyze_source on the fixture crate succeeds")
            sc = res.structured_content
            check(sc is not None and "findings" in sc and "errors" in sc and "stats" in sc,
                  "structured content has findings, errors, stats")
            got = sorted((f["function"].split("::")[-1], f["rule"]) for f in sc["findings"])
            check(got == [("deposit", "RC103"), ("rename_account", "RC101")], f"findings {got}")
            check(all(f["fixes"] and f["fixes"][0]["snippet"].startswith("///") for f in sc["findings"]),
                  "every finding carries a fix snippet")
            check(any(r["path"] == "/accounts/{id}/deposit" for f in sc["findings"] for r in f.get("routes", [])),
                  "routes are attached")
            text = res.content[0].text
            check("RC103/non-atomic-counter" in text, "the text block reads like a diagnostic")

            # Inline code, with a rule filter.
            code = open(os.path.join(root, "tests", "fixtures", "source", "RC102.rs")).read()
            res = await session.call_tool("analyze_source", {"code": code, "rules": ["check-then-act"]})
            rules = {f["rule"] for f in res.structured_content["findings"]}
            check(rules == {"RC102"}, f"inline code with rule filter gives {rules}")

            # Bad arguments are tool errors naming the problem; the server keeps serving.
            res = await session.call_tool("analyze_source", {"path": "/no/such/dir"})
            check(res.is_error and "/no/such/dir" in res.content[0].text, "missing path is a tool error naming it")
            res = await session.call_tool("analyze_source", {})
            check(res.is_error, "no path and no code is a tool error")
            res = await session.call_tool("analyze_source", {"code": "fn broken( {"})
            check(res.structured_content["errors"][0]["kind"] == "parse", "unparsable code is reported in errors")
            check(res.structured_content["errors"][0]["line"] == 1, "the parse error has its line")
            res = await session.call_tool("analyze_source", {"path": crate, "rules": ["RC999"]})
            check("RC999" in res.content[0].text, "an unknown rule is named")

            # OpenAPI: a file, inline content with a base_dir, and broken input.
            spec = os.path.join(root, "tests", "fixtures", "contract", "RC201.yaml")
            res = await session.call_tool("validate_openapi", {"path": spec})
            check(not res.is_error, "validate_openapi on a file succeeds")
            found = [(f["rule"], f["operation"], f["location"]["line"]) for f in res.structured_content["findings"]]
            check(found == [("RC201", "PUT /items/{id}", 20)], f"validate_openapi findings {found}")
            multi = os.path.join(root, "tests", "fixtures", "contract", "multi")
            content = open(os.path.join(multi, "openapi.yaml")).read()
            res = await session.call_tool("validate_openapi", {"content": content, "base_dir": multi})
            found = [(f["rule"], f["location"]["file"].endswith("items.yaml")) for f in res.structured_content["findings"]]
            check(found == [("RC201", True)], f"inline content with base_dir {found}")
            res = await session.call_tool("validate_openapi", {"content": "openapi: 3.0.3\ninfo: [unclosed\n"})
            f = res.structured_content["findings"][0]
            check(f["rule"] == "RC290" and f["location"]["line"] >= 2, f"malformed YAML is RC290 with its line: {f}")
            res = await session.call_tool("validate_openapi", {"path": "/no/such/spec.yaml"})
            check(res.is_error and "/no/such/spec.yaml" in res.content[0].text, "missing spec path is a tool error")

            # Source and contract together.
            res = await session.call_tool("audit_service", {"path": os.path.join(root, "tests", "fixtures", "audit")})
            rc3 = sorted(f["rule"] for f in res.structured_content["findings"] if f["rule"].startswith("RC3"))
            check(rc3 == ["RC301", "RC302", "RC303", "RC303"], f"audit_service correlation findings {rc3}")

            # The probe: progress after each round with our token, and the verdict.
            updates = []

            async def on_progress(progress, total, message):
                updates.append((progress, total, message))

            plan = {"target": {"method": "POST", "url": racy + "/counter/incr-racy", "headers": {"authorization": "Bearer sekrit"}},
                    "observe": {"url": racy + "/counter", "pointer": "/value"},
                    "mode": "lost-update", "concurrency": 10, "rounds": 3}
            res = await session.call_tool("probe_endpoint", plan, progress_callback=on_progress)
            check(not res.is_error, f"probe_endpoint runs: {res.content[0].text[:300]}")
            sc = res.structured_content
            check([f["rule"] for f in sc["findings"]] == ["RC401"], f"probe finds lost updates: {sc['findings']}")
            check(len(sc["probe"]["rounds"]) == 3, "three rounds reported")
            check(len(updates) == 3 and updates[-1][0] == 3 and updates[-1][1] == 3, f"progress after each round: {updates}")
            check("sekrit" not in res.content[0].text and "sekrit" not in str(sc), "the Authorization value is not echoed")
            plan["target"]["url"] = racy + "/counter/incr-safe"
            res = await session.call_tool("probe_endpoint", plan)
            check(res.structured_content["findings"] == [], "the safe counter gives no finding")
            check("no update was lost" in res.structured_content["probe"]["verdict"], "the verdict says what it saw")
            # A long probe the client abandons stops promptly: the counter stops moving.
            def counter():
                with urllib.request.urlopen(racy + "/counter", timeout=5) as r:
                    return json.load(r)["value"]

            slow = {"target": {"method": "POST", "url": racy + "/counter/incr-safe"},
                    "observe": {"url": racy + "/counter", "pointer": "/value"},
                    "mode": "lost-update", "concurrency": 5, "rounds": 10}
            with anyio.move_on_after(0.4) as scope:
                await session.call_tool("probe_endpoint", slow)
            check(scope.cancelled_caught, "the long probe was still running when abandoned")
            await asyncio.sleep(0.3)
            first = counter()
            await asyncio.sleep(1.0)
            check(counter() == first, "the probe stopped when the client cancelled")
            res = await session.call_tool("explain_rule", {"rule": "RC401"})
            check(not res.is_error, "the server serves after a cancelled call")

            plan["target"]["url"] = "http://10.9.9.9/x"
            res = await session.call_tool("probe_endpoint", plan)
            check(res.is_error and "not a loopback address" in res.content[0].text, "non-loopback targets are refused")
            plan["target"]["url"] = racy + "/counter/incr-racy"
            plan["concurrency"] = 500
            res = await session.call_tool("probe_endpoint", plan)
            check(res.is_error and "cap of 50" in res.content[0].text, "caps are enforced")

            res = await session.call_tool("explain_rule", {"rule": "RC101"})
            check(not res.is_error and "## What it does" in res.content[0].text, "explain_rule RC101")
            res = await session.call_tool("explain_rule", {"rule": "nope"})
            check(res.is_error, "explain_rule on an unknown rule is an error")

            resources = (await session.list_resources()).resources
            uris = {str(r.uri) for r in resources}
            check("racecheck://rules/RC103" in uris, f"rule resources listed ({len(uris)})")
            doc = await session.read_resource("racecheck://rules/RC103")
            check("non-atomic-counter" in doc.contents[0].text, "rule resource reads")

            # suggest_fix: a finding of an earlier answer by its fingerprint, or by a line of
            # its evidence; fixes in full; an id that is gone is refused by name.
            res = await session.call_tool("analyze_source", {"path": crate})
            first = res.structured_content["findings"][0]
            res = await session.call_tool("suggest_fix", {"path": crate, "id": first["fingerprint"]})
            sc = res.structured_content
            check(not res.is_error and sc["finding"]["fingerprint"] == first["fingerprint"]
                  and sc["finding"]["fixes"] and sc["finding"]["fixes"][0]["snippet"]
                  and sc["applicability"], "suggest_fix by id gives the fixes in full")
            line = first["location"]["line"]
            res = await session.call_tool("suggest_fix", {"path": crate, "line": line,
                                                          "file": os.path.basename(first["location"]["file"])})
            check(not res.is_error and res.structured_content["finding"]["rule"] == first["rule"],
                  "suggest_fix by line")
            # Edits on the user's own file, structured and as a diff, where the shape allows;
            # where it does not, the fix says why.
            rc102 = os.path.join(root, "tests", "fixtures", "source", "RC102.rs")
            res = await session.call_tool("analyze_source", {"path": rc102})
            racy = res.structured_content["findings"][0]
            res = await session.call_tool("suggest_fix", {"path": rc102, "id": racy["fingerprint"]})
            fx = res.structured_content["finding"]["fixes"][0]
            check(fx["edits"] and all({"file", "line", "column", "end_line", "end_column", "new_text"} <= set(e)
                                      for e in fx["edits"]), "suggest_fix gives structured edits")
            check(fx["diff"].startswith("--- a/") and "+        .condition_expression(" in fx["diff"],
                  "suggest_fix gives the unified diff of the edits")
            check("condition_expression" in res.content[0].text, "the text block shows the diff")
            res = await session.call_tool("suggest_fix", {"path": crate, "id": first["fingerprint"]})
            check(all(not f.get("edits") and f.get("edit_note") for f in res.structured_content["finding"]["fixes"]),
                  "a fix without edits says why")
            res = await session.call_tool("suggest_fix", {"path": crate, "id": "RC101-0000000000000000"})
            check(res.is_error and "RC101-0000000000000000" in res.content[0].text, "an unknown id is refused")

            # Prompts: listed with their arguments, filled in, unknown ones refused by name.
            prompts = {p.name: p for p in (await session.list_prompts()).prompts}
            check({"fix-races", "harden-api"} <= set(prompts), f"prompts listed ({sorted(prompts)})")
            check(any(a.name == "spec" and a.required for a in prompts["harden-api"].arguments),
                  "harden-api requires spec")
            got = await session.get_prompt("fix-races", {"path": crate})
            text = got.messages[0].content.text
            check(crate in text and "analyze_source" in text and "suggest_fix" in text,
                  "fix-races names the path and the tools")
            got = await session.get_prompt("harden-api", {"spec": "api/openapi.yaml", "path": crate})
            text = got.messages[0].content.text
            check("validate_openapi" in text and "audit_service" in text and "api/openapi.yaml" in text,
                  "harden-api walks spec then source")
            try:
                await session.get_prompt("harden-api", {})
                check(False, "harden-api without spec is refused")
            except Exception as e:  # McpError
                check("spec" in str(e), f"harden-api without spec is refused ({e})")
            try:
                await session.get_prompt("nope", {})
                check(False, "an unknown prompt is refused")
            except Exception as e:
                check("fix-races" in str(e), f"an unknown prompt is refused by name ({e})")

            # A 300-operation document: every answer within the budget, and the cursor visits
            # every finding exactly once.
            ops = []
            for i in range(100):
                ops.append(
                    f"  /r{i}:\n    post:\n      responses: {{'201': {{description: ok}}}}\n"
                    f"  /r{i}/{{id}}:\n    parameters: [{{name: id, in: path, required: true, schema: {{type: string}}}}]\n"
                    f"    get:\n      responses: {{'200': {{description: ok}}}}\n"
                    f"    put:\n      responses: {{'200': {{description: ok}}}}\n")
            big = "openapi: 3.0.3\ninfo: {title: big, version: '1'}\npaths:\n" + "".join(ops)
            seen, cursor, sizes, total = [], None, [], None
            while True:
                args = {"content": big}
                if cursor:
                    args["cursor"] = cursor
                res = await session.call_tool("validate_openapi", args)
                sc = res.structured_content
                sizes.append(len(json.dumps(sc, separators=(",", ":"), ensure_ascii=False))
                             + sum(len(c.text) for c in res.content))
                total = sc["summary"]["total"]
                seen += [(f["rule"], f["location"]["line"], f["location"]["column"], f["message"]) for f in sc["findings"]]
                cursor = sc.get("next_cursor")
                if not cursor:
                    break
            check(max(sizes) <= 20000, f"every answer fits in 20,000 characters (largest {max(sizes)})")
            check(len(sizes) > 1 and total > 100, f"the document needs paging ({total} findings, {len(sizes)} answers)")
            check(len(seen) == total and len(set(seen)) == total, f"paging visits each of {total} findings once ({len(seen)} seen)")
            res = await session.call_tool("validate_openapi", {"content": big, "cursor": "1.0000000000000000"})
            check(res.is_error and "changed" in res.content[0].text, "a stale cursor is refused")

            # Still serving after all the bad calls.
            res = await session.call_tool("analyze_source", {"path": crate})
            check(len(res.structured_content["findings"]) == 2, "server still serves")
    print(f"{PASSED} passed, 0 failed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3]))
