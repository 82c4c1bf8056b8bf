"""How long bookkeeping rows are kept before the worker's periodic jobs drop them."""

from __future__ import annotations

from datetime import timedelta

# A hospital's redelivery of a webhook is recognised (same reply, nothing stored
# twice) for this long; signatures older than 5 minutes are refused anyway, so
# this only has to outlast a hospital's own retry schedule.
WEBHOOK_DELIVERY_REPLAY_WINDOW = timedelta(days=7)

# A push for a patient reference no link has claimed is dropped after this long:
# a link code lives 24 hours, so a month-old push will never be claimed.
PARKED_PUSH_TTL = timedelta(days=30)

# Finished jobs keep their dedupe key (and their outcome, for operators) this long.
FINISHED_JOB_TTL = timedelta(days=7)
