"""A Django app for the integration tests: models to audit and views to call."""
