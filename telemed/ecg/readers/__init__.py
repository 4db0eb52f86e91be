"""One reader per ECG file format; each returns an ``EcgSignal`` or raises ``EcgFileError``."""
