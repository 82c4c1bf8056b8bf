"""Object storage adapters behind domain.blobs.BlobStore: S3 (infra.blobs.s3) or
local disk served by phr itself (infra.blobs.local); infra.blobs.factory picks one."""
