"""telemed's DICOM node: the listener member institutions send studies to (``scp``) and
the client that queries and retrieves from their PACS (``scu``). ``flask dicom serve``
runs the listener alone; ``flask serve`` runs it beside the web app."""
