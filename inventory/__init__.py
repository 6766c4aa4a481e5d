"""Distributed inventory service: GraphQL over serializable SQL."""
