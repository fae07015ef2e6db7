"""Talking to other servers: server discovery and the signed HTTPS client."""
