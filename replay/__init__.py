"""What was: time travel, rebuilds, integrity verification, the leaked-credential audit."""
