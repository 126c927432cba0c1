"""The only code that writes to the cluster or to a battery. Every action is idempotent, records
what it changed on the object it changed, and is skipped (only reported) in dry-run."""
