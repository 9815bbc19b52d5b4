"""Monitoring: data drift and the health of deployments."""
