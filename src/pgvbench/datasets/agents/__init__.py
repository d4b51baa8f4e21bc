"""The AI-agent platform dataset: data model and seeded generator."""
