"""What the talent service publishes: its topic (its messages come with their issue)."""

TOPIC = "exchange.talent.v1"
