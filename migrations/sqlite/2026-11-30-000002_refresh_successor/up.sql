-- The token a spent refresh token was rotated into, so that presenting the spent one
-- again within the grace period hands out that same successor instead of counting as
-- reuse (parallel renewals by one client).
ALTER TABLE refresh_tokens ADD COLUMN replaced_by TEXT;
