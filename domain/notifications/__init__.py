"""Notifications: what tells the patient something happened (rules, pure), the
inbox and preferences (use cases), and push delivery through an outbox."""
