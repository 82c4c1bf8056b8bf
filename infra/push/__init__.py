"""Push senders: one adapter per service behind domain's `PushSender` port."""
