"""The API's routes, one module per resource, each with its ``router``."""
