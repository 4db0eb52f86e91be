"""Pure domain rules on plain values: no database, no Flask, no clock of their own."""
