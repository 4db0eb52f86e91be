"""Services: load, check with the domain rules, change, flush. Entry points commit."""
