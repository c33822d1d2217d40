"""MCP (Model Context Protocol): other servers' tools in the assistant, and the assistant's tools
for other agents. Built on the official `mcp` SDK; imported only by the commands that use it."""
