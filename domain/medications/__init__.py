"""Medications: what a patient takes, computed from the MedicationRequests and
MedicationDispenses hospitals send (the refill engine is pure: `refill.py`)."""
