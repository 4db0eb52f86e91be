"""Server-rendered pages, one blueprint per area of work."""
