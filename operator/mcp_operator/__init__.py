"""mcp-fleet's Kubernetes operator: McpServer resources in, server pods, Redis and Services out."""
