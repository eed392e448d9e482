-- The per-(component, tenant) change feed: a component asks for the versions saved
-- after the revision it runs, for its own component only.
CREATE INDEX policies_feed ON policies (component, revision);
