"""Study sessions: the event schemas, the bucket query, and the routes that serve them."""
