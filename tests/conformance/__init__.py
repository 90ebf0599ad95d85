"""Per-venue-kind data for the conformance suite (``tests/test_venue_conformance.py``): see ``table``."""
