"""What the partners service publishes: its topic (its messages come with their issue)."""

TOPIC = "exchange.partners.v1"
