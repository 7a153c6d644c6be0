"""How people reach Sijil: the command line (and, later, the HTTP API and web page)."""
