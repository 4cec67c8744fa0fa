"""Privacy: PII and secret detectors, the redaction policy run at ingest (and in the
SDK), pseudonyms, erasure of a data subject with every proof intact, and the PII scan
of what is stored. docs/privacy.md is the reference."""
