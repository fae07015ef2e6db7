"""Views of the admin API. Each parses, checks the caller is a server admin (AdminView),
calls the apps' actions and queries, records the change in the audit log, and answers."""
