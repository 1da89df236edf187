-- Limits on reports: a per-account quota (kurt-reports counts an account's PENDING and RUNNING
-- jobs, and the jobs it created in the last 24 hours, before it creates another) and a retention
-- period (report workers delete the artifact of a report that SUCCEEDED longer ago than
-- --report_retention, and the report becomes EXPIRED).
ALTER TABLE report_jobs DROP CONSTRAINT report_jobs_state;
ALTER TABLE report_jobs ADD CONSTRAINT report_jobs_state
  CHECK (state IN ('PENDING', 'RUNNING', 'SUCCEEDED', 'FAILED', 'CANCELLED', 'EXPIRED'));

-- When the report became EXPIRED. An EXPIRED report keeps its artifact_key until its artifact
-- is deleted from the storage (the state changes first, so that no report says SUCCEEDED while
-- its artifact is gone; a worker that dies in between leaves the key for the next pass).
ALTER TABLE report_jobs ADD COLUMN expire_time timestamptz;

-- The quota's count of an account's jobs in progress.
CREATE INDEX report_jobs_account_active ON report_jobs (account_id)
  WHERE state IN ('PENDING', 'RUNNING');
-- The retention pass: the oldest finished reports that still have an artifact.
CREATE INDEX report_jobs_succeeded_finish ON report_jobs (finish_time) WHERE state = 'SUCCEEDED';
-- Expired reports whose artifact is still to be deleted.
CREATE INDEX report_jobs_expired_artifact ON report_jobs (expire_time)
  WHERE state = 'EXPIRED' AND artifact_key <> '';
