-- Erasing an account is one DELETE on patient; the foreign keys cascade (and run
-- with the owner's rights), so the application needs DELETE on patient alone.
GRANT DELETE ON patient TO phr_app;
