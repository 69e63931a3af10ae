"""An outside MCP client for the integration tests: the official MCP Python SDK (PyPI `mcp`)
talks to `gaze mcp tags` over stdio and to a running app's /mcp/library over streamable HTTP,
and prints what it got as one JSON line.

Usage: mcp_sdk_client.py GAZE_BINARY TAGS_CSV LIBRARY_URL
"""

import asyncio
import json
import sys

from mcp import Client, StdioServerParameters


def structured(result):
    data = result.model_dump(by_alias=True)
    if data.get("isError"):
        raise RuntimeError(f"tool error: {data}")
    content = data.get("structuredContent")
    if content is None:
        text = "".join(c.get("text", "") for c in data.get("content", []))
        content = json.loads(text)
    return content


async def main(gaze, csv, library_url):
    out = {}
    params = StdioServerParameters(command=gaze, args=["mcp", "tags", "--tags", csv])
    async with Client(params) as tags:
        listed = await tags.list_tools()
        out["tag_tools"] = sorted(t.name for t in listed.tools)
        out["search"] = structured(await tags.call_tool("search_tags", {"query": "long", "limit": 3}))
        out["validate"] = structured(await tags.call_tool("validate_tags", {"tags": ["long hair", "longhair"]}))
    async with Client(library_url) as library:
        listed = await library.list_tools()
        out["library_tools"] = sorted(t.name for t in listed.tools)
        items = structured(await library.call_tool("list_entries", {"category": "outfits"}))
        out["outfits"] = [i["slug"] for i in items["items"]]
        made = structured(await library.call_tool(
            "create_entry", {"category": "scenes", "document": {"scene_name": "Python Made"}}))
        out["created"] = made["slug"]
    print(json.dumps(out))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
