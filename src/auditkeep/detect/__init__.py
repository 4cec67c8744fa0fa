"""Detection: rules over committed events, alerts, and their delivery."""
