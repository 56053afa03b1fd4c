-- +goose Up
-- Who the IdP signed in and its session, which an IdP's logout names
-- (back-channel logout, SAML single logout, Okta Universal Logout).
ALTER TABLE gh_sessions
    ADD COLUMN idp_subject text COLLATE "C" NOT NULL DEFAULT '',
    ADD COLUMN idp_session text COLLATE "C" NOT NULL DEFAULT '';
CREATE INDEX gh_sessions_idp_subject ON gh_sessions (org, idp_subject) WHERE idp_subject <> '';
CREATE INDEX gh_sessions_idp_session ON gh_sessions (org, idp_session) WHERE idp_session <> '';
