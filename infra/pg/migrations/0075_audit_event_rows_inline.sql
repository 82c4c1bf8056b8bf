-- A timeline page's audit row lists the page's ids: 50 of them as text is about
-- 1.9 KB, which took the row past PostgreSQL's default 2 KB toast threshold. The
-- ids are random and do not compress, so every page read also wrote the list to
-- audit_event's TOAST table and its index, and the sequencer read it back from
-- there to hash it. Rows up to a page's size now stay inline (measured on 20,000
-- such rows: 2.8 s to insert against 3.5 s toasted); only longer ones (a page of
-- 200) still move out.
ALTER TABLE audit_event SET (toast_tuple_target = 8160);
