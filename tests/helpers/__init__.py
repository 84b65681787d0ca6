"""What the tests share: real services started and stopped by PID, fixture builders, oracles (no tests here)."""
