"""The partners domain: organizations, agreements and memberships, each an aggregate that owns its rules,
status and version. No framework, database or broker imports here."""
