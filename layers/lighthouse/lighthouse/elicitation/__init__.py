"""Elicitation: structured, schema-valid, signed questions between agents, with deadlines."""
