"""Sharing with a doctor through SMART Health Links (HL7 SMART Health Cards and
Links IG, STU1): the link payload, what a share's scope selects, which records are
sensitive, the passcode's lifetime attempt cap, and the use cases that create,
show, revoke and resolve shares."""
