"""The mcp function: Jan's MCP tools server (search, scrape) on the official MCP SDK, and Jan's MCP tool admin."""
