-- The answer kept for a webhook delivery is the api's rendering, opaque to the
-- domain and to this table: one column instead of HTTP status, media type and body.
-- Earlier answers are carried over in the api's encoding (JSON: status,
-- media_type, body as base64).
ALTER TABLE webhook_delivery ADD COLUMN reply bytea;
UPDATE webhook_delivery
SET reply = convert_to(
    json_build_object(
        'status', reply_status,
        'media_type', reply_media_type,
        'body', translate(encode(reply_body, 'base64'), E'\n', '')
    )::text,
    'UTF8'
)
WHERE reply_status IS NOT NULL;
ALTER TABLE webhook_delivery
    DROP COLUMN reply_status,
    DROP COLUMN reply_media_type,
    DROP COLUMN reply_body;
GRANT UPDATE (reply) ON webhook_delivery TO phr_app;
