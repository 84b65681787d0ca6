"""Push an archive's images into a real registry through the OCI distribution push API (httpx)."""
