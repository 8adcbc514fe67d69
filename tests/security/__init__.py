"""Attack tests: each finding of the security review (issue 12) replayed against its fix."""
