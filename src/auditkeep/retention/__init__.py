"""Retention: policies that purge old entries (proofs intact), and legal holds that stop them."""
