-- Batch records expire after 24 hours (kBatchRequestIdRetention). Each batch with a request id
-- deletes its account's expired records and a few of any account's, oldest first: without the
-- second, an account that never makes another batch would keep its records for ever. This index
-- finds the oldest without reading the table.
CREATE INDEX link_batches_create_time ON link_batches (create_time);
