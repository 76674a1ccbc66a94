-- Case members are users, named by id. A name typed when the case was opened could name no one,
-- or a user created later under that name (names of deleted users are free again); an id is
-- checked against `auth_users` when the case is opened, survives renames, and its membership
-- goes with the user when the user is deleted. Members whose name matches no user are dropped:
-- no one could have acted under the case as them.

CREATE TABLE case_members_by_id (
    case_id  INTEGER NOT NULL REFERENCES cases (id) ON DELETE CASCADE,
    user_id  INTEGER NOT NULL REFERENCES auth_users (id) ON DELETE CASCADE,
    PRIMARY KEY (case_id, user_id)
) STRICT;

INSERT INTO case_members_by_id (case_id, user_id)
    SELECT members.case_id, users.id
    FROM case_members AS members JOIN auth_users AS users ON users.name = members.user_name;

DROP TABLE case_members;

ALTER TABLE case_members_by_id RENAME TO case_members;

CREATE INDEX case_members_by_user ON case_members (user_id);
