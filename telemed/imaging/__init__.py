"""DICOM for cases: safe reading and indexing in a limited worker process, content-addressed
storage, rendering with a cache, de-identification and safe zip expansion."""
