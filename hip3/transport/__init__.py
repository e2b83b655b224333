"""Socket, outbound limits and post correlation: everything between the dispatcher and the wire."""
